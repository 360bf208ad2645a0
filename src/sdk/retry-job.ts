import type { JobManifest } from './job-store.ts';
import { mergeJobResults } from './job-results.ts';
import type { JobStatus } from './job-status.ts';
import { retryOnServer } from './server-retry.ts';
import { submitRound, type SubmitContext } from './submit-job.ts';

/** Error codes of lines that never ran; the Batch API does not count them as failed. */
const NOT_RUN = new Set(['batch_expired', 'batch_cancelled', 'batch_failed', 'not_finished']);

/** What a retry round sent again. */
export interface RetryRound {
  round: number;
  /** custom_ids resubmitted, in input order. */
  customIds: string[];
  batchIds: string[];
}

/**
 * Creates follow-up batches for exactly the lines whose latest result is an error (failed,
 * expired or cancelled): on an openbatch server by its retry endpoint, elsewhere read again
 * from the job's input. Returns null when nothing failed.
 * Their results replace the earlier errors when results are merged.
 */
export async function retryJob(
  ctx: SubmitContext,
  job: JobManifest,
  status: JobStatus,
): Promise<RetryRound | null> {
  if (status.state !== 'finished') {
    throw new Error(`job ${job.id} is still ${status.state}: wait for it before retrying`);
  }
  const ids = (await ctx.store.loadIds(job.id)) ?? [];
  const failed = new Map<string, boolean>();
  await mergeJobResults(ctx.client, status, ids, ({ line, isError }) => {
    if (isError) failed.set(line.custom_id, !NOT_RUN.has(line.error?.code ?? ''));
  });
  if (failed.size === 0) return null;
  const round = Math.max(...job.batches.map((b) => b.round)) + 1;
  const retriedFailed = [...failed.values()].filter(Boolean).length;
  const before = job.batches.length;
  const onServer = await retryOnServer(ctx.client, job, status, round, failed.size);
  if (onServer) {
    job.rounds.push({ round, parts_planned: onServer.length, retried_failed: retriedFailed });
    job.batches.push(...onServer);
    await ctx.store.save(job);
    for (const batch of onServer) ctx.onBatchCreated?.(batch, job);
  } else {
    await submitRound(ctx, job, round, { include: (id) => failed.has(id), retriedFailed });
  }
  return {
    round,
    customIds: ids.filter((id) => failed.has(id)),
    batchIds: job.batches.slice(before).map((b) => b.id),
  };
}
