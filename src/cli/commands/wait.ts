import type { Command } from 'commander';
import type OpenAI from 'openai';
import type { JobManifest, JobStore } from '../../sdk/job-store.ts';
import type { JobStatus } from '../../sdk/job-status.ts';
import { loadPricingFile } from '../../sdk/pricing.ts';
import { waitForJob } from '../../sdk/wait-job.ts';
import {
  EXIT_FAILED,
  EXIT_OK,
  fail,
  finishCommand,
  jobCommand,
  openJob,
  printJson,
  type ClientFlags,
  type JobsFlags,
  type OutputFlags,
} from '../command-kit.ts';
import { withInterrupt } from '../interrupt.ts';
import type { CliIo } from '../io.ts';
import { allCompleted, describeStatus, progressOf } from '../job-summary.ts';
import { parseCount, parseOptionalCount } from '../parse-flags.ts';
import { createProgressDisplay } from '../progress-display.ts';

/** Flags of anything that waits for a job. */
export interface WaitFlags {
  pollIntervalMs?: string | number | undefined;
  timeoutMs?: string | number | undefined;
  pricing?: string | undefined;
  signal?: AbortSignal | undefined;
  /** Plain progress lines at most this often. @default 2_000 */
  progressIntervalMs?: number | undefined;
}

/** Flags and arguments of `openbatch wait`. */
export interface WaitCommandOptions extends ClientFlags, JobsFlags, OutputFlags, WaitFlags {
  job: string;
}

/** Registers `openbatch wait` on the program. */
export function registerWait(program: Command, io: CliIo, setExit: (code: number) => void): void {
  const cmd = jobCommand(program, 'wait', "wait for all of a job's batches, with one progress bar")
    .option('--poll-interval-ms <ms>', 'time between two looks', '5000')
    .option('--timeout-ms <ms>', 'give up after this long')
    .option('--pricing <file>', 'JSON prices per model, for the cost so far');
  finishCommand(cmd, ['openbatch wait job_m1abc2de', 'openbatch wait last --json']).action(
    async (job: string, opts: Omit<WaitCommandOptions, 'job'>) => {
      const tty = process.stderr.isTTY === true;
      setExit(await withInterrupt((signal) => runWait({ ...opts, job, tty, signal }, io)));
    },
  );
}

/** Waits for a job; exit 0 when every batch completed, 1 when one failed, expired or was cancelled. */
export async function runWait(options: WaitCommandOptions, io: CliIo): Promise<number> {
  try {
    const { store, job, client } = await openJob(options);
    return await waitAndReport(client, store, job, options, io);
  } catch (err) {
    return fail(io, 'wait', err, options);
  }
}

/** Shared by wait and submit --wait: progress, final summary, remembered counts. */
export async function waitAndReport(
  client: OpenAI,
  store: JobStore,
  job: JobManifest,
  flags: WaitFlags & OutputFlags,
  io: CliIo,
): Promise<number> {
  const pricing = flags.pricing ? loadPricingFile(flags.pricing) : {};
  const display = createProgressDisplay(io, {
    tty: flags.tty === true,
    intervalMs: flags.progressIntervalMs,
    label: job.id,
  });
  const status = await waitForJob(client, job, {
    pollIntervalMs: parseCount('--poll-interval-ms', flags.pollIntervalMs, 5_000),
    maxWaitMs: parseOptionalCount('--timeout-ms', flags.timeoutMs),
    signal: flags.signal,
    onProgress: (s) => display.update(progressOf(job, s, pricing)),
  }).finally(() => display.stop());
  await remember(store, job, status);
  if (flags.json) printJson(io, status);
  else {
    io.stdout(describeStatus(status));
    if (status.counts.failed > 0)
      io.stdout(
        `${status.counts.failed} line(s) failed: 'openbatch retry ${job.id}' sends them again\n`,
      );
  }
  return allCompleted(status) ? EXIT_OK : EXIT_FAILED;
}

/** Keeps the latest counts in the manifest so `list` can show them without network. */
export async function remember(
  store: JobStore,
  job: JobManifest,
  status: JobStatus,
): Promise<void> {
  job.last_counts = { ...status.counts, state: status.state };
  await store.save(job);
}
