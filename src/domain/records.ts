import type { BatchError, BatchStatus } from '../protocol/batch.ts';
import type { FilePurpose } from '../protocol/file.ts';

/** A stored file's metadata (content lives in the blob store under `id`). Times in epoch ms. */
export interface FileRecord {
  id: string;
  project: string;
  purpose: FilePurpose;
  filename: string;
  bytes: number;
  created_at_ms: number;
  expires_at_ms: number | null;
}

/** Token totals aggregated over a batch's successful responses. */
export interface UsageTotals {
  input_tokens: number;
  cached_tokens: number;
  output_tokens: number;
  reasoning_tokens: number;
  total_tokens: number;
}

/** A stored batch. Times in epoch ms; the API converts to Unix seconds. */
export interface BatchRecord {
  id: string;
  project: string;
  endpoint: string;
  input_file_id: string;
  completion_window: string;
  status: BatchStatus;
  model: string | null;
  errors: BatchError[] | null;
  output_file_id: string | null;
  error_file_id: string | null;
  created_at_ms: number;
  in_progress_at_ms: number | null;
  expires_at_ms: number;
  finalizing_at_ms: number | null;
  completed_at_ms: number | null;
  failed_at_ms: number | null;
  expired_at_ms: number | null;
  cancelling_at_ms: number | null;
  cancelled_at_ms: number | null;
  total: number;
  completed: number;
  failed: number;
  usage: UsageTotals;
  metadata: Record<string, string> | null;
  output_expires_after_seconds: number | null;
}

/** Item lifecycle: queued → leased → (queued again on retry) → one terminal state. */
export const ITEM_STATES = [
  'queued',
  'leased',
  'succeeded',
  'failed',
  'expired',
  'cancelled',
] as const;
export type ItemState = (typeof ITEM_STATES)[number];

/** Names one lease of one item: results carrying an older `lease_gen` are fenced out. */
export interface LeaseKey {
  item_id: number;
  lease_gen: number;
}

/** An item handed to a dispatcher by a claim; `lease_gen` fences its result. */
export interface ClaimedItem {
  item_id: number;
  batch_id: string;
  custom_id: string;
  endpoint: string;
  model: string;
  body: string;
  attempts: number;
  lease_gen: number;
  /**
   * 1 when an earlier lease of this line was lost at a crash: its sent mark is then written
   * before the send, not in the next group commit (SQLite boolean).
   */
  suspect: number;
}

/** The recorded result of one attempt, applied only if the lease is still held. */
export type ItemOutcome =
  | {
      kind: 'response';
      item_id: number;
      lease_gen: number;
      succeeded: boolean;
      status_code: number;
      request_id: string;
      response_body: string;
      usage: UsageTotals | null;
    }
  | { kind: 'error'; item_id: number; lease_gen: number; code: string; message: string }
  | {
      kind: 'retry';
      item_id: number;
      lease_gen: number;
      not_before_ms: number;
      /** A 429 gives the attempt back (design.md invariant 5). */
      refund_attempt: boolean;
      last_error: string;
    }
  /** The batch was cancelled or expired while the item was in flight and its grace ran out. */
  | { kind: 'stop'; item_id: number; lease_gen: number; state: 'cancelled' | 'expired' }
  /**
   * The request went to the upstream: from now on a lost lease counts towards poison. Recorded in
   * the next group commit (within ~10 ms of the send), not before it, so a send costs no write.
   */
  | { kind: 'sent'; item_id: number; lease_gen: number }
  /** Nothing was decided (e.g. shutdown); the item goes back to the queue as it was claimed. */
  | { kind: 'release'; item_id: number; lease_gen: number; refund_attempt: boolean };

/** A finished item as the finalizer reads it. */
export interface FinishedItem {
  custom_id: string;
  state: ItemState;
  status_code: number | null;
  request_id: string | null;
  response_body: string | null;
  error_code: string | null;
  error_message: string | null;
}

export const emptyUsage = (): UsageTotals => ({
  input_tokens: 0,
  cached_tokens: 0,
  output_tokens: 0,
  reasoning_tokens: 0,
  total_tokens: 0,
});
