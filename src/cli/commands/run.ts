import { existsSync } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import type OpenAI from 'openai';
import { createServerRuntime, type ServerRuntime } from '../../compose.ts';
import { createLogger } from '../../lib/logger.ts';
import { createSimulator } from '../../simulator/simulator.ts';
import type { BatchEndpoint } from '../../protocol/endpoints.ts';
import { InputChangedError, InvalidLinesError } from '../../sdk/errors.ts';
import { fsJobStore } from '../../sdk/job-store.ts';
import type { JobStatus } from '../../sdk/job-status.ts';
import { fileLineSource, sha256OfFile } from '../../sdk/line-source.ts';
import { loadPricingFile, type PricingOverrides } from '../../sdk/pricing.ts';
import type { SplitLimits } from '../../sdk/split-plan.ts';
import { submitJob } from '../../sdk/submit-job.ts';
import { buildUsageTable, formatUsageTable } from '../../sdk/usage-table.ts';
import { waitForJob } from '../../sdk/wait-job.ts';
import {
  EXIT_FAILED,
  EXIT_OK,
  fail,
  finishCommand,
  printJson,
  type OutputFlags,
} from '../command-kit.ts';
import { EXIT_INTERRUPTED, Interrupted, withInterrupt } from '../interrupt.ts';
import type { CliIo } from '../io.ts';
import { allCompleted, progressOf } from '../job-summary.ts';
import {
  checkUpstreams,
  defaultResultPaths,
  defaultStateDir,
  inProcessClient,
  runConfig,
} from '../local-run.ts';
import { createProgressDisplay } from '../progress-display.ts';
import { describeErrorFile, writeJobResults } from '../write-results.ts';
import { parseEndpoint } from '../parse-flags.ts';

/** The job id a local run records in its state directory. */
const RUN_JOB_ID = 'run';

/** Flags and arguments of `openbatch run`. */
export interface RunOptions extends OutputFlags {
  input: string;
  stateDir?: string | undefined;
  upstream?: string | undefined;
  upstreamApiKey?: string | undefined;
  /** Answer with the built-in simulator (synthetic replies): a dry run, or a first try. */
  simulate?: boolean | undefined;
  config?: string | undefined;
  output?: string | undefined;
  errors?: string | undefined;
  ordered?: boolean | undefined;
  endpoint?: string | undefined;
  pricing?: string | undefined;
  /** @default 500 */
  pollIntervalMs?: number | undefined;
  /** @default 2_000 (plain progress lines) */
  progressIntervalMs?: number | undefined;
  signal?: AbortSignal | undefined;
}

/** Registers `openbatch run` on the program. */
export function registerRun(program: Command, io: CliIo, setExit: (code: number) => void): void {
  const cmd = program
    .command('run')
    .description('run a batch file locally with the openbatch engine (no server), resumable')
    .argument('<input.jsonl>', 'batch input file (OpenAI format)')
    .option('-o, --output <file>', 'output file (default: <input>.output.jsonl)')
    .option(
      '--errors <file>',
      'error file (default: <input>.errors.jsonl, only when a line failed)',
    )
    .option('--ordered', 'write results in input order')
    .option(
      '--upstream <url>',
      'OpenAI-compatible endpoint to call (default: OPENBATCH_UPSTREAM_URL)',
    )
    .addOption(
      new Option('--upstream-api-key <key>', 'API key for --upstream').env(
        'OPENBATCH_UPSTREAM_API_KEY',
      ),
    )
    .option('--simulate', 'answer with the built-in simulator (synthetic replies, no upstream)')
    .option('--config <file>', 'openbatch config file (upstreams, engine tuning)')
    .option('--state-dir <dir>', 'where the run keeps its state (default: .openbatch-run/<hash>)')
    .option('--endpoint <path>', "endpoint every line must use (default: each line's url)")
    .option(
      '--pricing <file>',
      'JSON prices per model: {"<model>": {"inputPerMTok", "cachedInputPerMTok", "outputPerMTok"}}',
    );
  finishCommand(cmd, [
    'openbatch run requests.jsonl --upstream http://localhost:8000/v1',
    'openbatch run requests.jsonl --simulate   # a dry run against synthetic replies',
    'openbatch run requests.jsonl -o answers.jsonl --ordered   # again after Ctrl-C: it continues',
  ]).action(async (input: string, opts: Omit<RunOptions, 'input'>) => {
    const code = await withInterrupt((signal) =>
      runRun({ ...opts, input, signal, tty: process.stderr.isTTY === true }, io),
    );
    setExit(code);
  });
}

/** Runs (or continues) a local batch; returns the exit code. */
export async function runRun(options: RunOptions, io: CliIo): Promise<number> {
  let runtime: ServerRuntime | null = null;
  let fresh: string | null = null;
  const simulator = options.simulate
    ? createSimulator({ latencyMs: 50, latencyJitterMs: 30 })
    : null;
  try {
    const upstream = simulator
      ? `${(await simulator.listen(0, '127.0.0.1')).url}/v1`
      : options.upstream;
    if (simulator)
      io.stderr(
        'openbatch run: --simulate: answers come from the built-in SIMULATOR (synthetic replies)\n',
      );
    const input = resolve(options.input);
    const { size } = await stat(input);
    const sha256 = await sha256OfFile(input);
    const endpoint = parseEndpoint(options.endpoint);
    const pricing = options.pricing ? loadPricingFile(options.pricing) : {};
    const stateDir = resolve(options.stateDir ?? defaultStateDir(input, sha256));
    fresh = existsSync(stateDir) ? null : stateDir;
    const config = runConfig({
      stateDir,
      config: options.config,
      upstream,
      upstreamApiKey: simulator ? undefined : options.upstreamApiKey,
      inputBytes: size,
    });
    await checkUpstreams(config.upstreams);
    runtime = await createServerRuntime(config, createLogger('error'));
    return await driveRun(
      runtime,
      { ...options, input, sha256, endpoint, prices: pricing, stateDir },
      io,
    );
  } catch (err) {
    if (err instanceof Interrupted || options.signal?.aborted) {
      io.stderr(`openbatch run: interrupted; run the same command again to continue\n`);
      return EXIT_INTERRUPTED;
    }
    // A file rejected before anything ran leaves no state behind.
    if (err instanceof InvalidLinesError && fresh !== null) {
      await runtime?.close();
      runtime = null;
      await rm(fresh, { recursive: true, force: true });
    }
    return fail(io, 'run', err, options);
  } finally {
    await runtime?.close();
    await simulator?.close();
  }
}

interface ResolvedRun extends RunOptions {
  sha256: string;
  endpoint: BatchEndpoint | undefined;
  prices: PricingOverrides;
  stateDir: string;
}

/** A local run never splits: the engine streams any size (the server limits are lifted too). */
const ONE_BATCH: SplitLimits = {
  maxLines: Number.MAX_SAFE_INTEGER,
  maxBytes: Number.MAX_SAFE_INTEGER,
  maxEmbeddingInputs: Number.MAX_SAFE_INTEGER,
  oneModelPerFile: false,
};

async function driveRun(runtime: ServerRuntime, o: ResolvedRun, io: CliIo): Promise<number> {
  const client = inProcessClient(runtime);
  const store = fsJobStore(o.stateDir);
  // Submitting again is how a run resumes: the recorded job is found and nothing is re-created.
  const recorded = await store.load(RUN_JOB_ID);
  if (recorded && recorded.input.sha256 !== o.sha256)
    throw new InputChangedError(
      `${o.stateDir} holds a run of another version of ${o.input}; choose another --state-dir`,
    );
  const job = await submitJob({
    client,
    store,
    source: fileLineSource(o.input),
    jobId: RUN_JOB_ID,
    endpoint: o.endpoint,
    limits: ONE_BATCH,
    input: { path: o.input, sha256: o.sha256 },
  });
  const display = createProgressDisplay(io, {
    tty: o.tty === true,
    intervalMs: o.progressIntervalMs,
    label: 'run',
  });
  const status = await waitForJob(client, job, {
    pollIntervalMs: o.pollIntervalMs ?? 500,
    signal: o.signal,
    onProgress: (s) => display.update(progressOf(job, s, o.prices)),
  }).finally(() => display.stop());
  const ids = (await store.loadIds(job.id)) ?? [];
  await reportRun(client, status, ids, o, io);
  return allCompleted(status) ? EXIT_OK : EXIT_FAILED;
}

async function reportRun(
  client: OpenAI,
  status: JobStatus,
  ids: readonly string[],
  o: ResolvedRun,
  io: CliIo,
): Promise<void> {
  const defaults = defaultResultPaths(o.input);
  const written = await writeJobResults(client, status, ids, {
    output: o.output ? resolve(o.output) : defaults.output,
    errors: o.errors ? resolve(o.errors) : defaults.errors,
    keepEmptyErrors: o.errors !== undefined,
    ordered: o.ordered === true,
  });
  const table = buildUsageTable(written.usageByModel, o.prices);
  for (const b of status.batches.filter((x) => x.status !== 'completed')) {
    const first = b.errors[0];
    const why = first
      ? `: ${first.line === null ? '' : `line ${first.line}: `}${first.message}`
      : '';
    io.stderr(`openbatch run: batch ${b.id} ended ${b.status}${why}\n`);
  }
  if (!o.json) {
    io.stdout(`${describeRun(written, status.counts)}\n${formatUsageTable(table)}`);
    return;
  }
  const { usageByModel: _byModel, ...files } = written;
  printJson(io, {
    state_dir: o.stateDir,
    counts: status.counts,
    batches: status.batches,
    ...files,
    usage_table: table,
  });
}

function describeRun(
  w: { output: string; errors: string | null; outputLines: number; errorLines: number },
  counts: { total: number; completed: number; failed: number },
): string {
  return [
    `${counts.completed.toLocaleString('en-US')} of ${counts.total.toLocaleString('en-US')} lines completed, ${counts.failed.toLocaleString('en-US')} failed`,
    `output: ${w.output} (${w.outputLines} lines)`,
    describeErrorFile(w),
  ].join('\n');
}
