/**
 * Benchmark 2 — rate-limit efficiency. The simulator enforces RPM and TPM per second with
 * OpenAI's headers; a batch with mixed prompt sizes and max_tokens. Prints the sending time
 * divided by the theoretical minimum (the binding limit's time), the share of sends answered
 * 429, and failed lines: once with the limits given in config, once learned only from headers.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fmt, spawnOpenbatch } from './bench-helpers.ts';
import { runBatchThrough } from './run-batch.ts';
import { readCallLog } from './sim-log.ts';

const LINES = Number(process.env.BENCH_RL_LINES ?? 5_000);
const RPM = 20_000;
const TPM = 6_000_000;
const MAX_TOKENS = [16, 64, 128, 256];

function makeLines(): { lines: object[]; admissionTokens: number } {
  let admissionTokens = 0;
  const lines = Array.from({ length: LINES }, (_, i) => {
    const content = `Document ${i}: ` + 'lorem ipsum dolor sit amet '.repeat(2 + ((i * 37) % 60));
    const max_tokens = MAX_TOKENS[i % MAX_TOKENS.length]!;
    // The simulator counts like OpenAI at admission: prompt (chars/4 + 4 per message) + max_tokens.
    admissionTokens += Math.ceil(content.length / 4) + 4 + max_tokens;
    return {
      custom_id: `r-${i}`,
      method: 'POST',
      url: '/v1/chat/completions',
      body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content }], max_tokens },
    };
  });
  return { lines, admissionTokens };
}

async function variant(label: string, configured: boolean): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'openbatch-bench-rl-'));
  const log = join(dir, 'calls.jsonl');
  const sim = await spawnOpenbatch(
    [
      'simulate',
      '--port',
      '0',
      '--rpm',
      String(RPM),
      '--tpm',
      String(TPM),
      '--latency-ms',
      '60',
      '--jitter-ms',
      '40',
      '--log',
      log,
    ],
    {},
    /listening on (http:\/\/\S+)\/v1/,
  );
  const env: Record<string, string> = {
    OPENBATCH_UPSTREAM_URL: `${sim.url}/v1`,
    OPENBATCH_UPSTREAM_MAX_CONCURRENCY: '128',
    OPENBATCH_TICK_MS: '100',
  };
  if (configured)
    Object.assign(env, {
      OPENBATCH_UPSTREAM_RPM: String(RPM),
      OPENBATCH_UPSTREAM_TPM: String(TPM),
    });
  const server = await spawnOpenbatch(
    ['serve', '--port', '0', '--data-dir', join(dir, 'data')],
    env,
    /openbatch listening on (http:\/\/\S+\/v1)/,
  );
  try {
    const { lines, admissionTokens } = makeLines();
    const { batch } = await runBatchThrough(server.url, lines, join(dir, 'input.jsonl'));
    await sim.stop(); // flushes the call log
    const calls = readCallLog(log);
    const spanS = (calls.at(-1)!.atMs - calls[0]!.atMs) / 1000;
    // One second of each limit is available at once (the burst), the rest at the per-minute rate.
    const minS = Math.max(
      (LINES - RPM / 60) / (RPM / 60),
      (admissionTokens - TPM / 60) / (TPM / 60),
    );
    const limitedCalls = calls.filter((c) => c.status === 429);
    const limited = limitedCalls.length;
    const firstSecond = limitedCalls.filter((c) => c.atMs - calls[0]!.atMs < 1_000).length;
    console.log(
      `  ${label}: sending took ${fmt(spanS, 1)} s vs theoretical minimum ${fmt(minS, 1)} s → ${fmt(spanS / minS, 3)}× (target ≤ 1.05×)`,
    );
    console.log(
      `    429s: ${limited} of ${calls.length} sends = ${fmt((100 * limited) / calls.length, 2)}% (target ≤ 1%), ${firstSecond} of them in the first second; failed lines: ${batch.request_counts?.failed ?? '?'} (target 0); status ${batch.status}`,
    );
  } finally {
    await server.stop();
    await sim.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runRateLimitBench(): Promise<void> {
  const { admissionTokens } = makeLines();
  console.log(
    `rate-limit efficiency: ${fmt(LINES)} lines, simulator ${fmt(RPM)} RPM / ${fmt(TPM)} TPM (${fmt(admissionTokens)} tokens counted at admission)`,
  );
  await variant('limits from config ', true);
  await variant('limits from headers', false);
}

if (import.meta.url === `file://${process.argv[1]}`) await runRateLimitBench();
