import type OpenAI from 'openai';
import type { BatchResultsPage } from '../protocol/batch-results.ts';
import { isTerminalStatus } from '../protocol/batch-status.ts';
import { systemClock } from '../lib/clock.ts';
import type { ResultLine } from './job-results.ts';

/** Options of `followBatchResults`. */
export interface FollowResultsOptions {
  /** Start after this cursor (a `next_cursor` seen before), to resume a follow. */
  after?: string | undefined;
  /** Lines per request. @default 1000 */
  limit?: number | undefined;
  /** Between two looks while the batch runs and nothing new has finished. @default 1_000 */
  pollIntervalMs?: number | undefined;
  /** Stops following (rejects with the signal's reason); the batch keeps running. */
  signal?: AbortSignal | undefined;
  /** Called after every page with the cursor to resume from. */
  onCursor?: ((cursor: string) => void) | undefined;
}

/** One page of GET /v1/batches/{id}/results (an openbatch extension). */
export async function fetchBatchResultsPage(
  client: OpenAI,
  batchId: string,
  query: { after?: string | undefined; limit?: number | undefined },
  signal?: AbortSignal,
): Promise<BatchResultsPage> {
  return client.get<BatchResultsPage>(`/batches/${batchId}/results`, {
    query: { ...(query.after ? { after: query.after } : {}), limit: query.limit ?? 1_000 },
    signal: signal ?? null,
  });
}

/**
 * Yields every finished line of a batch on an openbatch server as soon as it is recorded, while
 * the batch runs and after, each exactly once, and returns once the batch has ended and every
 * line was seen. Lines are in the output/error file format (`response` or `error` set).
 */
export async function* followBatchResults(
  client: OpenAI,
  batchId: string,
  options: FollowResultsOptions = {},
): AsyncGenerator<ResultLine> {
  let after = options.after;
  for (;;) {
    options.signal?.throwIfAborted();
    const page = await fetchBatchResultsPage(
      client,
      batchId,
      { after, limit: options.limit },
      options.signal,
    );
    for (const line of page.data) yield line as unknown as ResultLine;
    after = page.next_cursor;
    options.onCursor?.(after);
    if (page.has_more) continue;
    if (isTerminalStatus(page.batch_status)) return;
    await systemClock.sleep(options.pollIntervalMs ?? 1_000, options.signal);
  }
}
