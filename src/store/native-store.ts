import type { BatchExecution, UpstreamProgress } from '../domain/batch-execution.ts';
import type { UsageTotals } from '../domain/records.ts';

/** What a merge or a fallback adds to a batch's execution field. */
export interface ExecutionCounts {
  native_lines?: number;
  native_usage?: UsageTotals;
  fallback_lines?: number;
  /** Replaces (null: removes) the progress of the batch's open sub-batches. */
  upstream_progress?: UpstreamProgress | null;
}

/**
 * One line handed to a sub-batch: its chunk (and the chunk's lease_gen then: outcomes are fenced
 * by it), its index there, and its `custom_id` (the upstream echoes it).
 */
export type NativeLineKey = readonly [
  chunk_id: number,
  lease_gen: number,
  index: number,
  custom_id: string,
];

export const NATIVE_SUB_STATES = [
  /** Recorded before the upstream create; after a crash it is looked up by `marker` first. */
  'intent',
  /** The upstream batch exists (`upstream_batch_id`); polled. */
  'submitted',
  /** The upstream batch ended; its results are merged next. */
  'ended',
  /** Its results were merged (terminal). */
  'merged',
  /** Its lines went back to the backlog (token limit reached, or never created) (terminal). */
  'released',
] as const;
export type NativeSubState = (typeof NATIVE_SUB_STATES)[number];

/** A sub-batch: lines of one user batch and one model, run as one batch on the upstream. */
export interface NativeSubRecord {
  marker: string;
  batch_id: string;
  upstream: string;
  model: string;
  state: NativeSubState;
  keys: NativeLineKey[];
  tokens: number;
  bytes: number;
  upstream_batch_id: string | null;
  upstream_input_file_id: string | null;
  upstream_status: string | null;
  created_at_ms: number;
  next_poll_ms: number;
  polls: number;
  /** The upstream was asked to cancel it (user cancel, expiry, deadline fallback). */
  cancel_requested: boolean;
  last_error: string | null;
  /** The upstream's request_counts at the last poll. */
  upstream_completed: number;
  upstream_failed: number;
}

export type NewNativeSub = Pick<
  NativeSubRecord,
  | 'marker'
  | 'batch_id'
  | 'upstream'
  | 'model'
  | 'keys'
  | 'tokens'
  | 'bytes'
  | 'created_at_ms'
  | 'upstream_input_file_id'
>;

export type NativeSubPatch = Partial<
  Pick<
    NativeSubRecord,
    | 'state'
    | 'upstream_batch_id'
    | 'upstream_input_file_id'
    | 'upstream_status'
    | 'next_poll_ms'
    | 'polls'
    | 'cancel_requested'
    | 'last_error'
    | 'upstream_completed'
    | 'upstream_failed'
  >
>;

/** A chunk of a native queue with lines not yet finished nor handed to a sub-batch. */
export interface NativeChunk {
  chunk_id: number;
  lease_gen: number;
  batch_id: string;
  input_file_id: string;
  endpoint: string;
  deadline_ms: number;
  expires_at_ms: number;
  byte_start: number;
  byte_end: number;
  offsets: Uint32Array;
  done: Uint8Array;
  /** Bit i set: line i is in a sub-batch. */
  sent: Uint8Array;
}

/**
 * The native runner's persistence (engine/native). A native chunk (`state = 'native'`) has lines
 * in sub-batches: its `sent` bits mark them; it is never leased, so neither a lease sweep nor a
 * restart takes it back. Results are merged through the ordinary group commit (outcomes fenced
 * by `lease_gen` apply to `native` chunks as to leased ones).
 */
export interface NativeStore {
  /** Sets the batch's `execution` field. */
  setExecution(batchId: string, execution: BatchExecution): Promise<void>;
  /**
   * Chunks of `queue` (an upstream's native queue) of running batches with free lines (neither
   * done nor in a sub-batch), earliest deadline first, at most `limit`.
   */
  backlog(queue: string, limit: number): Promise<NativeChunk[]>;
  /**
   * Records a sub-batch before its upstream create, in one transaction: its lines are marked
   * handed (chunks become `native`) and the row is inserted as `intent`. False (nothing written)
   * when a line is no longer free.
   */
  insertSub(sub: NewNativeSub, nowMs: number): Promise<boolean>;
  getSub(marker: string): Promise<NativeSubRecord | null>;
  /** Sub-batches of an upstream not yet merged or released, oldest first. */
  openSubs(upstream: string): Promise<NativeSubRecord[]>;
  updateSub(marker: string, patch: NativeSubPatch): Promise<void>;
  /**
   * Gives a sub-batch's unfinished lines back to the backlog (their sent bits cleared) and sets
   * its final state, in one transaction: `released` (nothing merged: token limit, never created)
   * or `merged` (its results are recorded; lines it did not answer may run again).
   */
  releaseSub(marker: string, state: 'released' | 'merged'): Promise<void>;
  /**
   * Moves the batch's chunks of `queue` with unfinished lines to `target`: `{ upstream }` queues
   * them for real-time calls there (deadline fallback), `{ stop }` ends them cancelled or
   * expired (their error lines are written at finalize). Call only once no sub-batch of the
   * batch is open. Returns the lines moved.
   */
  moveNativeLines(
    batchId: string,
    queue: string,
    target: { upstream: string } | { stop: 'cancelled' | 'expired' },
  ): Promise<number>;
  /** Adds to the batch's execution counters (native_lines, native_usage, fallback_lines). */
  countExecution(batchId: string, add: ExecutionCounts): Promise<void>;
}
