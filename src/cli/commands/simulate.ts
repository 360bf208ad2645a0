import type { Command } from 'commander';
import { createSimulator } from '../../simulator/simulator.ts';
import { waitForShutdownSignal, type CliIo } from '../io.ts';

interface SimulateFlags {
  port: string;
  host: string;
  latencyMs?: string;
  jitterMs?: string;
  rpm?: string;
  tpm?: string;
  failRate?: string;
  failStatuses?: string;
  log?: string;
  seed?: string;
  slots?: string;
  queue?: string;
  prefixCache?: string;
  batchApi?: boolean;
  batchTurnaroundMs?: string;
  batchQueueTokens?: string;
}

export function registerSimulate(
  program: Command,
  io: CliIo,
  setExit: (code: number) => void,
): void {
  program
    .command('simulate')
    .description('run an OpenAI-compatible simulated upstream (latency, rate limits, faults)')
    .option('--port <port>', 'port to listen on', '8787')
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--latency-ms <n>', 'mean added latency per request')
    .option('--jitter-ms <n>', 'uniform +- latency jitter')
    .option('--rpm <n>', 'requests per minute per model (sends x-ratelimit-* headers)')
    .option('--tpm <n>', 'tokens per minute per model')
    .option('--fail-rate <p>', 'probability 0..1 of an injected fault')
    .option('--fail-statuses <list>', 'comma-separated statuses for injected faults', '500')
    .option('--log <file>', 'append a JSONL call log to this file')
    .option('--seed <n>', 'seed for jitter and fault choice')
    .option('--slots <n>', 'header-less capacity mode: requests served at once (vLLM-like)')
    .option('--queue <n>', 'capacity mode: requests that may wait for a slot before 503s', '0')
    .option(
      '--prefix-cache <n>',
      'model a prompt cache of the last n prompts (cached_tokens in usage, prompts ≥ 1,024 tokens)',
    )
    .option('--batch-api', "serve OpenAI's Files + Batches API too (native batch passthrough)")
    .option('--batch-turnaround-ms <n>', 'Batch API: time from in_progress to completed', '10000')
    .option('--batch-queue-tokens <n>', 'Batch API: enqueued-token limit per model')
    .action(async (flags: SimulateFlags) => setExit(await runSimulate(flags, io)));
}

const optionalNumber = (value: string | undefined): number | undefined =>
  value === undefined ? undefined : Number(value);

export async function runSimulate(
  flags: SimulateFlags,
  io: CliIo,
  shutdown: Promise<unknown> = waitForShutdownSignal(),
): Promise<number> {
  const numbers = [
    flags.port,
    flags.latencyMs,
    flags.jitterMs,
    flags.rpm,
    flags.tpm,
    flags.failRate,
    flags.seed,
    flags.slots,
    flags.queue,
    flags.prefixCache,
    flags.batchTurnaroundMs,
    flags.batchQueueTokens,
  ];
  if (numbers.some((v) => v !== undefined && !Number.isFinite(Number(v)))) {
    io.stderr('openbatch simulate: numeric options must be numbers\n');
    return 2;
  }
  const simulator = createSimulator({
    ...(flags.latencyMs !== undefined && { latencyMs: Number(flags.latencyMs) }),
    ...(flags.jitterMs !== undefined && { latencyJitterMs: Number(flags.jitterMs) }),
    ...(flags.rpm !== undefined && { rpm: Number(flags.rpm) }),
    ...(flags.tpm !== undefined && { tpm: Number(flags.tpm) }),
    ...(flags.failRate !== undefined && { failRate: Number(flags.failRate) }),
    ...(flags.failStatuses !== undefined && {
      failStatuses: flags.failStatuses.split(',').map(Number),
    }),
    ...(flags.log !== undefined && { logFile: flags.log }),
    ...(flags.seed !== undefined && { seed: optionalNumber(flags.seed) ?? 1 }),
    ...(flags.batchApi && {
      batchApi: {
        turnaroundMs: Number(flags.batchTurnaroundMs ?? 10_000),
        ...(flags.batchQueueTokens !== undefined && {
          defaultQueueTokens: Number(flags.batchQueueTokens),
        }),
      },
    }),
    ...(flags.slots !== undefined && {
      capacity: { slots: Number(flags.slots), queue: Number(flags.queue ?? 0) },
    }),
    ...(flags.prefixCache !== undefined && { prefixCache: { entries: Number(flags.prefixCache) } }),
  });
  const { url } = await simulator.listen(Number(flags.port), flags.host);
  io.stdout(`openbatch simulator listening on ${url}/v1\n`);
  await shutdown;
  await simulator.close();
  return 0;
}
