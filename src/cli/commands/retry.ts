import { stat } from 'node:fs/promises';
import type { Command } from 'commander';
import { InputChangedError } from '../../sdk/errors.ts';
import type { JobManifest } from '../../sdk/job-store.ts';
import { fetchJobStatus } from '../../sdk/job-status.ts';
import { fileLineSource, sha256OfFile, type LineSource } from '../../sdk/line-source.ts';
import { retryJob } from '../../sdk/retry-job.ts';
import {
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
import { waitAndReport, type WaitFlags } from './wait.ts';

/** Flags and arguments of `openbatch retry`. */
export interface RetryOptions extends ClientFlags, JobsFlags, OutputFlags, WaitFlags {
  job: string;
  wait?: boolean | undefined;
}

/** Registers `openbatch retry` on the program. */
export function registerRetry(program: Command, io: CliIo, setExit: (code: number) => void): void {
  const cmd = jobCommand(
    program,
    'retry',
    'create follow-up batches for the failed, expired or cancelled lines of a job',
  )
    .option('--wait', 'wait for the follow-up batches with a progress bar')
    .option('--poll-interval-ms <ms>', 'with --wait: time between two looks', '5000');
  finishCommand(cmd, ['openbatch retry job_m1abc2de --wait', 'openbatch retry last --json']).action(
    async (job: string, opts: Omit<RetryOptions, 'job'>) => {
      const tty = process.stderr.isTTY === true;
      setExit(await withInterrupt((signal) => runRetry({ ...opts, job, tty, signal }, io)));
    },
  );
}

/** `openbatch retry`: returns the exit code (only main.ts exits). */
export async function runRetry(options: RetryOptions, io: CliIo): Promise<number> {
  try {
    const { store, job, client } = await openJob(options);
    const round = await retryJob(
      { client, store, source: await inputOf(job) },
      job,
      await fetchJobStatus(client, job),
    );
    if (round === null) {
      if (options.json) printJson(io, { job_id: job.id, retried: 0, batches: [] });
      else io.stdout(`job ${job.id}: no failed, expired or cancelled lines to retry\n`);
      return EXIT_OK;
    }
    if (!options.json)
      io.stderr(
        `round ${round.round}: ${round.customIds.length} line(s) sent again in ${round.batchIds.join(', ')}\n`,
      );
    if (options.wait) return await waitAndReport(client, store, job, options, io);
    if (options.json)
      printJson(io, {
        job_id: job.id,
        round: round.round,
        retried: round.customIds.length,
        batches: round.batchIds,
      });
    else io.stdout(`${job.id}\n`);
    return EXIT_OK;
  } catch (err) {
    return fail(io, 'retry', err, options);
  }
}

/** The job's input file, checked unchanged: retries match lines by custom_id. */
async function inputOf(job: JobManifest): Promise<LineSource> {
  const path = job.input.path;
  if (path === null)
    throw new InputChangedError(
      `job ${job.id} has no input file recorded; it was not submitted from a file`,
    );
  await stat(path);
  if (job.input.sha256 !== null && (await sha256OfFile(path)) !== job.input.sha256)
    throw new InputChangedError(
      `${path} changed since job ${job.id} was submitted; retry needs the original lines`,
    );
  return fileLineSource(path);
}
