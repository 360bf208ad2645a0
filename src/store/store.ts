import type { BatchError } from '../protocol/batch.ts';
import type {
  WebhookAttemptUpdate,
  WebhookDeliveryRecord,
  WebhookEndpointRecord,
  WebhookEventType,
} from '../domain/webhooks.ts';
import type { BatchListQuery } from '../protocol/batch.ts';
import type { FileListQuery } from '../protocol/file.ts';
import type {
  BatchRecord,
  ChunkLease,
  ClaimedChunk,
  FileRecord,
  ItemOutcome,
  KeyGrant,
  KeyRole,
  UnrunChunk,
  UsageTotals,
} from '../domain/records.ts';
import type { CachedResponse } from './cost-ops.ts';
import type { NativeStore } from './native-store.ts';

export type {
  NativeChunk,
  NativeLineKey,
  NativeStore,
  NativeSubPatch,
  NativeSubRecord,
  NewNativeSub,
} from './native-store.ts';

/** A run of validated lines ready to become a durable chunk (its lines stay in the input file). */
export interface NewChunk {
  upstream: string;
  /** Physical line number of its first line (claims go by deadline, then this). */
  first_line: number;
  byte_start: number;
  byte_end: number;
  /** Start of each line, relative to `byte_start`. */
  offsets: readonly number[];
}

/** Where a batch's output and error spools are durable up to (bytes), as last committed. */
export interface SpoolLengths {
  output_bytes: number;
  error_bytes: number;
}

/** What a lease sweep did. */
export interface LeaseSweep {
  /** Chunks taken from their holder (requeued, split or failed). */
  revoked: ChunkLease[];
  /** Lines quarantined as poison. */
  poisoned: number;
}

/** What an Idempotency-Key stands for: the object its first request made, and that request's hash. */
export interface IdempotencyEntry {
  project: string;
  /** The route it was sent to: `batches`, `files`, `retry`. */
  scope: string;
  key: string;
  request_hash: string;
  object_id: string;
  created_at_ms: number;
}

/** A key to record with a new object, unless an entry newer than `live_after_ms` holds it. */
export interface IdempotencyClaim extends IdempotencyEntry {
  live_after_ms: number;
}

/** Batches of one status across every project, summed (metrics). */
export interface BatchStatusTotals {
  status: string;
  batches: number;
  total: number;
  completed: number;
  failed: number;
  usage: UsageTotals;
}

/** What a project holds now (quotas). */
export interface ProjectUsage {
  /** Batches validating, in progress, finalizing or cancelling. */
  activeBatches: number;
  files: number;
  fileBytes: number;
}

/** One process's heartbeat in the cluster rate-limit exchange. */
export interface LimiterExchangeRequest {
  memberId: string;
  /** Every key (upstream and model) this process sends on now: replaces what it said before. */
  activeKeys: string[];
  /** 429s it saw since its last heartbeat: key → retry-after ms. */
  cooldowns: ReadonlyMap<string, number>;
  /** A process counts (its keys too) for this long after its last heartbeat. */
  liveWindowMs: number;
}

export interface LimiterExchangeReply {
  /** Processes that sent a heartbeat within the window (this one included). */
  liveMembers: number;
  /** Live processes sending on each key. */
  activeByKey: Map<string, number>;
  /** Cooldowns still running, by key: ms left. */
  cooldownMsByKey: Map<string, number>;
}

/** How a batch ends when its items are all terminal. */
export type FinalStatus = 'completed' | 'expired' | 'cancelled';

/**
 * Persistence behind engine-level operations (not tables). Every method is one transaction;
 * none is ever held open across an upstream call (design.md invariant 3).
 */
export interface Store {
  /**
   * Other processes may use this store at the same time (PostgreSQL). Then answers are kept in
   * the store itself, written by the group commit (`readAnswers`), not in this process's spools;
   * start-up takes back only leases that ran out; once-only work runs under `withBatchDuty`.
   */
  readonly shared: boolean;
  /** The native batch runner's rows (sub-batches on upstreams' Batch APIs; issue 10). */
  readonly native: NativeStore;
  /**
   * Runs `duty` (ingest, finalize…) for `batchId` unless another process is running one for it
   * now; returns false then. A duty's lock dies with its process, so another takes over.
   */
  withBatchDuty(batchId: string, duty: () => Promise<void>): Promise<boolean>;
  /**
   * Bytes [start, end) of a shared store's answers of a batch (its output or error lines, in
   * commit order, as an embedded store's spool holds them), in pieces. `end` at most the
   * committed length (`spoolLengths`). Only for a shared store: an embedded one uses spools.
   */
  readAnswers(
    batchId: string,
    file: 'output' | 'error',
    start: number,
    end: number,
  ): AsyncIterable<Buffer>;
  /** Answers when the database does (readiness probe); throws when it cannot be read. */
  ping(): Promise<void>;
  /**
   * A shared store's rate-limit exchange between processes (absent on an embedded store): see
   * ClusterLimits. Times are the database's, so process clocks need not agree.
   */
  readonly limiterExchange?: (request: LimiterExchangeRequest) => Promise<LimiterExchangeReply>;

  // -- API keys and projects
  hasApiKeys(): Promise<boolean>;
  insertApiKey(key: {
    key_hash: string;
    project: string;
    role: KeyRole;
    created_at_ms: number;
  }): Promise<void>;
  /** The project and role of a key, by its hash; null for an unknown key. */
  keyByHash(keyHash: string): Promise<KeyGrant | null>;

  /** What a project holds now, for its quotas. */
  projectUsage(project: string): Promise<ProjectUsage>;

  // -- files
  /**
   * Inserts the file (and records `key` for it, in the same transaction). When a live entry
   * already holds `key`, nothing is inserted and that entry is returned; otherwise null.
   */
  insertFile(file: FileRecord, key?: IdempotencyClaim): Promise<IdempotencyEntry | null>;
  getFile(project: string, id: string): Promise<FileRecord | null>;
  /** A file of any project (admin views only). */
  getFileById(id: string): Promise<FileRecord | null>;
  listFiles(project: string, query: FileListQuery): Promise<FileRecord[]>;
  deleteFile(project: string, id: string): Promise<boolean>;
  /** True while a batch that has not ended reads this file (its lines stay in the blob). */
  fileInUse(id: string): Promise<boolean>;
  /**
   * Of `ids` (blob keys), those nothing needs: no file row, not reserved by a finalizing batch,
   * not the input of a batch that has not ended. Their blobs may go.
   */
  unneededBlobs(ids: readonly string[]): Promise<string[]>;
  /** Removes expired file rows and returns their ids (the caller deletes the blobs). */
  deleteExpiredFiles(nowMs: number, limit: number): Promise<string[]>;

  // -- batches, as the API sees them
  /** Like `insertFile`: the batch and its Idempotency-Key in one transaction, or the entry that holds the key. */
  insertBatch(batch: BatchRecord, key?: IdempotencyClaim): Promise<IdempotencyEntry | null>;
  /** The entry for an Idempotency-Key, if one newer than `liveAfterMs` exists. */
  findIdempotencyKey(
    project: string,
    scope: string,
    key: string,
    liveAfterMs: number,
  ): Promise<IdempotencyEntry | null>;
  /** Forgets Idempotency-Keys recorded before `beforeMs`; returns how many. */
  purgeIdempotencyKeys(beforeMs: number): Promise<number>;
  getBatch(project: string, id: string): Promise<BatchRecord | null>;
  /** Newest first; fetches `limit + 1` rows so the caller can tell `has_more`. */
  listBatches(project: string, query: BatchListQuery): Promise<BatchRecord[]>;
  /** Moves a cancellable batch to `cancelling` and stops its unstarted items, atomically. */
  requestCancel(project: string, id: string, nowMs: number): Promise<BatchRecord | null>;

  // -- engine: batch lifecycle
  batchesWithStatus(statuses: readonly string[]): Promise<BatchRecord[]>;
  getBatchById(id: string): Promise<BatchRecord | null>;
  /** Forgets chunks left by an interrupted ingest, so ingest can start over. */
  resetIngest(batchId: string): Promise<void>;
  /** Stores chunks of validated lines, not yet claimable (`pending`). */
  insertChunks(batchId: string, deadlineMs: number, chunks: readonly NewChunk[]): Promise<void>;
  /**
   * validating → in_progress; false if the batch left `validating` meanwhile (cancel). Its chunks
   * stay `pending` until `queuePendingItems` releases them, as many at a time as the caller paces.
   */
  markInProgress(
    batchId: string,
    total: number,
    model: string | null,
    nowMs: number,
  ): Promise<boolean>;
  /** validating → failed with `errors`; its chunks are dropped. */
  markFailed(batchId: string, errors: BatchError[], nowMs: number): Promise<void>;
  /** Makes up to `limit` pending chunks of the batch claimable; returns how many. */
  queuePendingItems(batchId: string, limit: number): Promise<number>;
  /** True while chunks of the batch wait for `queuePendingItems` (e.g. after a crash mid-way). */
  hasPendingItems(batchId: string): Promise<boolean>;
  /** Marks every not-yet-claimed chunk of the batch `cancelled` or `expired`. */
  stopUnstartedItems(batchId: string, state: 'cancelled' | 'expired'): Promise<number>;
  /** True while any chunk of the batch is pending, queued or leased. */
  hasUnfinishedItems(batchId: string): Promise<boolean>;
  markFinalizing(batchId: string, nowMs: number): Promise<void>;
  /** Committed lengths of the batch's output and error spools. */
  spoolLengths(batchId: string): Promise<SpoolLengths>;
  /** True when a line of the batch ended `batch_expired` (the batch ends `expired`). */
  hasExpiredLines(batchId: string): Promise<boolean>;
  /** Chunks of the batch that ended with lines not run, page by page after `afterChunkId`. */
  unrunChunks(
    batchId: string,
    afterChunkId: number,
    limit: number,
  ): Promise<(UnrunChunk & { chunk_id: number })[]>;
  /**
   * The file ids this batch's finalizing publishes, chosen once so a finalize cut short by a crash
   * publishes under the same ids again (no orphan files).
   */
  reserveFileIds(
    batchId: string,
    ids: { output: string; error: string },
  ): Promise<{ output: string; error: string }>;
  /** Registers the output/error files and sets the final status, in one transaction. */
  completeBatch(
    batchId: string,
    status: FinalStatus,
    files: { output: FileRecord | null; error: FileRecord | null },
    nowMs: number,
  ): Promise<void>;

  // -- engine: the chunk queue
  /**
   * Leases due chunks of `upstream` (earliest deadline first, then line number), as many as
   * hold about `maxLines` lines and `maxBytes` input bytes (always at least one).
   */
  claimChunks(
    upstream: string,
    limits: { maxLines: number; maxBytes: number },
    leaseMs: number,
    nowMs: number,
  ): Promise<ClaimedChunk[]>;
  /** Extends leases still held (fenced by lease_gen) to `untilMs`; returns how many. */
  renewLeases(leases: readonly ChunkLease[], untilMs: number): Promise<number>;
  /** Records, before their send, that these lines of suspect chunks go out (see ClaimedChunk). */
  markSent(lines: readonly { chunk_id: number; lease_gen: number; index: number }[]): Promise<void>;
  /**
   * The outcomes that would apply now: lease still held, line not yet done, first of its line in
   * the list. The recorder writes the spools for exactly these before `recordOutcomes`.
   */
  applicableOutcomes(outcomes: readonly ItemOutcome[]): Promise<ItemOutcome[]>;
  /**
   * Applies outcomes (all must be applicable) and the spools' new committed lengths, in one
   * transaction: the group commit of design.md §3.
   */
  recordOutcomes(
    outcomes: readonly ItemOutcome[],
    spools: ReadonlyMap<string, SpoolLengths>,
    nowMs: number,
  ): Promise<void>;
  /**
   * Takes back chunks whose lease ran out (or every leased chunk, at start-up when `all`). Lines
   * that were sent become chunks of their own, held back `suspectDelayMs` × their lost leases; a
   * line that lost `poisonAfter` leases while sent fails, so a line that kills the worker cannot
   * loop. Unsent lines stay in the chunk, their attempt refunded.
   */
  releaseLeases(
    nowMs: number,
    opts: {
      all: boolean;
      poisonAfter: number;
      /** A requeued line whose request was out waits this × its lost leases before it runs again. */
      suspectDelayMs: number;
    },
  ): Promise<LeaseSweep>;

  // -- webhooks (the outbox rows are written by completeBatch and markFailed)
  insertWebhookEndpoint(endpoint: WebhookEndpointRecord): Promise<void>;
  /** Oldest first. */
  listWebhookEndpoints(project: string): Promise<WebhookEndpointRecord[]>;
  getWebhookEndpoint(id: string): Promise<WebhookEndpointRecord | null>;
  /** Deletes the endpoint; its pending deliveries end `failed`. False if it is not the project's. */
  deleteWebhookEndpoint(project: string, id: string): Promise<boolean>;
  /**
   * Turns up to `limit` outbox events into one pending delivery per endpoint of their project
   * that subscribes to the type (and `everyProject`, the environment's endpoint), in one
   * transaction; returns how many deliveries were made.
   */
  fanOutWebhookEvents(
    everyProject: { id: string; events: readonly WebhookEventType[] } | null,
    nowMs: number,
    limit: number,
  ): Promise<number>;
  /** Pending deliveries due by `nowMs`, soonest first, leaving out `skip` (in flight). */
  dueWebhookDeliveries(
    nowMs: number,
    limit: number,
    skip: readonly number[],
  ): Promise<WebhookDeliveryRecord[]>;
  recordWebhookAttempt(deliveryId: number, update: WebhookAttemptUpdate): Promise<void>;
  /** Newest first, `limit + 1` rows (for `has_more`), ids below `before`. */
  listWebhookDeliveries(
    project: string,
    endpointId: string,
    query: { limit: number; before?: number | undefined },
  ): Promise<WebhookDeliveryRecord[]>;

  // -- cost controls (issue 13; store/cost-ops.ts)
  /**
   * in_progress → cancelling because the engine stopped the batch (its spend cap, its error
   * rate): records `code` (the code its not-run lines get) and `errors`, and stops its unstarted
   * chunks, like a cancel. False when the batch was no longer in progress.
   */
  stopBatchEarly(
    batchId: string,
    code: string,
    errors: BatchError[],
    nowMs: number,
  ): Promise<boolean>;
  /** The cached answer for (scope, key) unless it expired by `nowMs`. */
  cachedResponse(scope: string, key: string, nowMs: number): Promise<CachedResponse | null>;
  /** Stores (or replaces) a cached answer. */
  putCachedResponse(entry: CachedResponse): Promise<void>;
  /** Drops expired answers and the oldest past `maxEntries`; returns how many went. */
  pruneResponseCache(nowMs: number, maxEntries: number): Promise<number>;

  // -- observability (metrics, dashboard)
  /** Every project's batches grouped by status, with their counts and usage summed. */
  batchTotals(): Promise<BatchStatusTotals[]>;
  /** Newest batches first, of one project or (null) of every project. */
  recentBatches(project: string | null, limit: number): Promise<BatchRecord[]>;
  /** Newest files first, of one project or (null) of every project. */
  recentFiles(project: string | null, limit: number): Promise<FileRecord[]>;
  /** Lines in chunks waiting to be claimed, per upstream (a chunk given back counts whole). */
  queuedLines(): Promise<{ upstream: string; lines: number }[]>;

  close(): Promise<void>;
}
