export type { BatchExecution, UpstreamProgress } from '../protocol/batch-execution.ts';

/** How an upstream runs batch lines: its real-time endpoint, its own Batch API, or either. */
export const BATCH_MODES = ['realtime', 'native', 'auto'] as const;
export type BatchMode = (typeof BATCH_MODES)[number];

/** How one upstream runs batch lines: real-time calls, its own Batch API, or either (issue 10). */
export interface UpstreamBatchSettings {
  /** @default 'auto': native when the upstream has a Batch API (probed once), else realtime */
  mode: BatchMode;
  /** First poll of a sub-batch after this; later polls back off to `maxPollMs`. @default 30_000 */
  pollMs: number;
  /** @default 300_000 */
  maxPollMs: number;
  /** Lines per sub-batch file. @default 50_000 (OpenAI's) */
  maxLines: number;
  /** Bytes per sub-batch file. @default 200 MB (OpenAI's) */
  maxBytes: number;
  /**
   * Enqueued prompt-token limit per model (OpenAI's "batch queue limit"); a model missing here
   * has none until a `token_limit_exceeded` failure teaches it.
   */
  queueTokens: Record<string, number>;
  /**
   * In `auto`, sub-batches still open this long before the user's `expires_at` are cancelled and
   * their lines run real-time; a batch whose window is shorter than this runs real-time at once.
   * @default 3_600_000
   */
  fallbackMarginMs: number;
  /** Delete sub-batch input and output files upstream once merged. @default true */
  deleteFiles: boolean;
}
