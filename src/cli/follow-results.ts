import { followBatchResults } from '../sdk/batch-results.ts';
import {
  clientFor,
  jobStoreFor,
  loadJob,
  type ClientFlags,
  type JobsFlags,
} from './command-kit.ts';
import type { CliIo } from './io.ts';

/** What `openbatch results --follow` follows: a job (all its batches) or one batch by id. */
export interface FollowFlags extends ClientFlags, JobsFlags {
  job: string;
  pollIntervalMs: number;
  signal?: AbortSignal | undefined;
}

/**
 * Prints every finished line of the job's batches as JSONL on stdout while they run (GET
 * /v1/batches/{id}/results on an openbatch server), each once, and returns the number of lines
 * once every batch has ended.
 */
export async function followResults(flags: FollowFlags, io: CliIo): Promise<number> {
  const direct = flags.job.startsWith('batch_');
  const job = direct ? null : await loadJob(jobStoreFor(flags), flags.job, flags);
  const client = clientFor(flags, job ?? undefined);
  const batchIds = job ? job.batches.map((b) => b.id) : [flags.job];
  let lines = 0;
  await Promise.all(
    batchIds.map(async (id) => {
      const options = { pollIntervalMs: flags.pollIntervalMs, signal: flags.signal };
      for await (const line of followBatchResults(client, id, options)) {
        io.stdout(`${JSON.stringify(line)}\n`);
        lines += 1;
      }
    }),
  );
  return lines;
}
