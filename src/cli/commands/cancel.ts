import type { Command } from 'commander';
import { isTerminalStatus } from '../../protocol/batch-status.ts';
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

/** Flags and arguments of `openbatch cancel`. */
export interface CancelOptions extends ClientFlags, JobsFlags, OutputFlags {
  job: string;
}

/** Registers `openbatch cancel` on the program. */
export function registerCancel(program: Command, io: CliIo, setExit: (code: number) => void): void {
  const cmd = jobCommand(
    program,
    'cancel',
    'cancel every unfinished batch of a job (finished lines keep their results)',
  );
  finishCommand(cmd, ['openbatch cancel job_m1abc2de']).action(
    async (job: string, opts: Omit<CancelOptions, 'job'>) =>
      setExit(await runCancel({ ...opts, job }, io)),
  );
}

/** `openbatch cancel`: returns the exit code (only main.ts exits). */
export async function runCancel(options: CancelOptions, io: CliIo): Promise<number> {
  try {
    const { job, client } = await openJob(options);
    const status = await fetchJobStatus(client, job);
    const cancelled: { id: string; status: string }[] = [];
    for (const b of status.batches.filter((x) => !isTerminalStatus(x.status))) {
      const batch = await client.batches.cancel(b.id);
      cancelled.push({ id: batch.id, status: batch.status });
    }
    if (options.json) printJson(io, { job_id: job.id, cancelled });
    else if (cancelled.length === 0)
      io.stdout(`job ${job.id}: nothing to cancel, every batch has finished\n`);
    else io.stdout(cancelled.map((c) => `${c.id}: ${c.status}\n`).join(''));
    return EXIT_OK;
  } catch (err) {
    return fail(io, 'cancel', err, options);
  }
}
