import type { Command } from 'commander';
import { fetchJobStatus } from '../../sdk/job-status.ts';
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
import type { CliIo } from '../io.ts';
import { describeStatus } from '../job-summary.ts';
import { remember } from './wait.ts';

/** Flags and arguments of `openbatch status`. */
export interface StatusOptions extends ClientFlags, JobsFlags, OutputFlags {
  job: string;
}

/** Registers `openbatch status` on the program. */
export function registerStatus(program: Command, io: CliIo, setExit: (code: number) => void): void {
  const cmd = jobCommand(
    program,
    'status',
    'show the aggregated progress of a job across its batches',
  );
  finishCommand(cmd, ['openbatch status job_m1abc2de', 'openbatch status last --json']).action(
    async (job: string, opts: Omit<StatusOptions, 'job'>) =>
      setExit(await runStatus({ ...opts, job }, io)),
  );
}

/** `openbatch status`: returns the exit code (only main.ts exits). */
export async function runStatus(options: StatusOptions, io: CliIo): Promise<number> {
  try {
    const { store, job, client } = await openJob(options);
    const status = await fetchJobStatus(client, job);
    await remember(store, job, status);
    if (options.json) printJson(io, status);
    else io.stdout(describeStatus(status));
    return EXIT_OK;
  } catch (err) {
    return fail(io, 'status', err, options);
  }
}
