import type { BatchError, BatchStatus } from '../protocol/batch.ts';
import type { BatchExecution } from './batch-execution.ts';
import type { FilePurpose } from '../protocol/file.ts';
import type { TokenUsage } from '../protocol/token-usage.ts';

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

/** Token totals aggregated over a batch's successful responses (written once, in protocol/). */
export type UsageTotals = TokenUsage;
export { emptyUsage } from '../protocol/token-usage.ts';

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
  /** Extension: what the batch's answers cost so far (a stored batch always has it). */
  cost?: LineCost;
  /** Extension: lines answered from the response cache (no upstream call, no cost). */
  cache_hits?: number;
  /** Extension: the spend cap the batch was created with (USD), null for none. */
  max_cost_usd?: number | null;
  /** Extension: failed / finished lines above which the batch stops early (0..1), null for none. */
  max_error_rate?: number | null;
  /** How its lines run (native batch passthrough); absent until the engine decides. */
  execution?: BatchExecution | null;
  /** Why the engine stopped the batch early: the code its not-run lines get. */
  stop_code?: string | null;
}

/**
 * Money in nano-dollars (integers: sums stay exact). `charged` at the price the line ran at,
 * `standard` at the upstream's real-time price (what the same usage costs without the discount).
 */
export interface LineCost {
  charged_nano: number;
  standard_nano: number;
}

/**
 * A chunk is a run of up to a few hundred consecutive lines of one batch for one upstream: the
 * unit of claiming and leasing. Its lines stay in the input file (byte offsets); finished lines
 * are bits in its `done` map. A line that must wait (a retry, a suspect after a crash) moves into
 * a chunk of its own, so per-line state exists only for the lines that need it.
 *
 * pending ──batch started──► queued ──claim──► leased ──every line done──► done
 * leased ──lease lost / released──► queued          queued|pending ──cancel/expiry──► cancelled|expired
 * leased (one line, lost too often while sent) ──► failed (poison; its error line is written at finalize)
 */
export const CHUNK_STATES = [
  'pending',
  'queued',
  'leased',
  'done',
  'cancelled',
  'expired',
  'failed',
  /** Lines in sub-batches on the upstream's own Batch API (engine/native; never leased). */
  'native',
] as const;
export type ChunkState = (typeof CHUNK_STATES)[number];
/** States in which a chunk still has lines to run. */
export const UNFINISHED_CHUNK_STATES = ['pending', 'queued', 'leased', 'native'] as const;

/** One lease of one chunk: outcomes carrying an older `lease_gen` are fenced out. */
export interface ChunkLease {
  chunk_id: number;
  lease_gen: number;
}

/** Names one line of a leased chunk (its index within the chunk). */
export interface LineKey extends ChunkLease {
  index: number;
}

/** A chunk handed to a dispatcher by a claim. */
export interface ClaimedChunk extends ChunkLease {
  batch_id: string;
  input_file_id: string;
  endpoint: string;
  byte_start: number;
  byte_end: number;
  /** Start of each line, relative to `byte_start`. */
  offsets: Uint32Array;
  /** Bit i set: line i is finished (recorded, or moved to a chunk of its own); skip it. */
  done: Uint8Array;
  /** Claims of this chunk so far, this one included: every line in it is on this attempt. */
  attempts: number;
  /**
   * A lease of this chunk was lost at a crash: its sends are marked before they go out, not in the
   * next group commit, so a line that crashes the process at once is still caught (engine README).
   */
  suspect: boolean;
}

/** A line of a claimed chunk, parsed and ready to send. */
export interface ClaimedItem extends LineKey {
  batch_id: string;
  custom_id: string;
  endpoint: string;
  model: string;
  body: string;
  attempts: number;
  suspect: boolean;
}

/** A finished line, as written to the batch's output or error file. */
export interface RecordedLine {
  batch_id: string;
  file: 'output' | 'error';
  /** The whole JSONL line, newline included. */
  text: string;
}

/** The recorded result of one attempt, applied only if the chunk's lease is still held. */
export type ItemOutcome =
  /** An answer from the upstream (2xx → output file, counted completed; else error file, failed). */
  | (LineKey & {
      kind: 'response';
      succeeded: boolean;
      usage: UsageTotals | null;
      record: RecordedLine;
      /** What the answer cost (absent: nothing priced it). */
      cost?: LineCost | undefined;
      /** Answered from the response cache, not by the upstream. */
      cached?: boolean | undefined;
    })
  /** No answer and no more attempts: an error line, counted failed. */
  | (LineKey & { kind: 'error'; record: RecordedLine })
  /** Try again later: the line moves to a chunk of its own, due at `not_before_ms`. */
  | (LineKey & {
      kind: 'retry';
      not_before_ms: number;
      /** A 429 gives the attempt back (design.md invariant 5). */
      refund_attempt: boolean;
      last_error: string;
    })
  /** The batch was cancelled or expired before the line ran to an answer: a not-executed line. */
  | (LineKey & { kind: 'stop'; state: 'cancelled' | 'expired'; record: RecordedLine })
  /**
   * The request went to the upstream: from now on a lost lease counts towards poison. Recorded in
   * the next group commit (within ~10 ms of the send), not before it, so a send costs no write.
   */
  | (LineKey & { kind: 'sent' })
  /** Nothing was decided (shutdown): the whole chunk goes back to the queue as it was claimed. */
  | (ChunkLease & { kind: 'release'; refund_attempt: boolean });

/** The lines of a chunk that ended without running them all (cancelled, expired, poisoned). */
export interface UnrunChunk {
  state: 'cancelled' | 'expired' | 'failed';
  byte_start: number;
  byte_end: number;
  offsets: Uint32Array;
  done: Uint8Array;
  /** For a poisoned line: why it failed. */
  last_error: string | null;
}

/** What an API key may do: `admin` keys also see every project's scheduler state. */
export type KeyRole = 'admin' | 'member';

/** What a request's key grants: its project and role. */
export interface KeyGrant {
  project: string;
  role: KeyRole;
}
