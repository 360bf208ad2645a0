import type { BatchError } from '../protocol/batch.ts';
import type { BatchListQuery } from '../protocol/batch.ts';
import type { FileListQuery } from '../protocol/file.ts';
import type {
  BatchRecord,
  ClaimedItem,
  FileRecord,
  FinishedItem,
  ItemOutcome,
} from '../domain/records.ts';

/** A validated line ready to become a durable item. */
export interface NewItem {
  line_no: number;
  custom_id: string;
  upstream: string;
  model: string;
  body: string;
}

/** How a batch ends when its items are all terminal. */
export type FinalStatus = 'completed' | 'expired' | 'cancelled';

/**
 * Persistence behind engine-level operations (not tables). Every method is one transaction;
 * none is ever held open across an upstream call (design.md invariant 3).
 */
export interface Store {
  // -- API keys and projects
  hasApiKeys(): Promise<boolean>;
  insertApiKey(key: { key_hash: string; project: string; created_at_ms: number }): Promise<void>;
  projectForKeyHash(keyHash: string): Promise<string | null>;

  // -- files
  insertFile(file: FileRecord): Promise<void>;
  getFile(project: string, id: string): Promise<FileRecord | null>;
  listFiles(project: string, query: FileListQuery): Promise<FileRecord[]>;
  deleteFile(project: string, id: string): Promise<boolean>;
  /** Removes expired file rows and returns their ids (the caller deletes the blobs). */
  deleteExpiredFiles(nowMs: number, limit: number): Promise<string[]>;

  // -- batches, as the API sees them
  insertBatch(batch: BatchRecord): Promise<void>;
  getBatch(project: string, id: string): Promise<BatchRecord | null>;
  /** Newest first; fetches `limit + 1` rows so the caller can tell `has_more`. */
  listBatches(project: string, query: BatchListQuery): Promise<BatchRecord[]>;
  /** Moves a cancellable batch to `cancelling` and stops its unstarted items, atomically. */
  requestCancel(project: string, id: string, nowMs: number): Promise<BatchRecord | null>;

  // -- engine: batch lifecycle
  batchesWithStatus(statuses: readonly string[]): Promise<BatchRecord[]>;
  getBatchById(id: string): Promise<BatchRecord | null>;
  /** Forgets items left by an interrupted ingest, so ingest can start over. */
  resetIngest(batchId: string): Promise<void>;
  /** Inserts items; returns the line numbers whose custom_id was already in the batch. */
  insertItems(
    batchId: string,
    endpoint: string,
    deadlineMs: number,
    items: NewItem[],
  ): Promise<number[]>;
  /**
   * validating → in_progress; false if the batch left `validating` meanwhile (cancel). Its items
   * stay `pending` until `queuePendingItems` releases them, in chunks the caller paces.
   */
  markInProgress(
    batchId: string,
    total: number,
    model: string | null,
    nowMs: number,
  ): Promise<boolean>;
  /** validating → failed with `errors`; its items are dropped. */
  markFailed(batchId: string, errors: BatchError[], nowMs: number): Promise<void>;
  /** Makes up to `limit` pending items of the batch claimable; returns how many. */
  queuePendingItems(batchId: string, limit: number): Promise<number>;
  /** True while items of the batch wait for `queuePendingItems` (e.g. after a crash mid-way). */
  hasPendingItems(batchId: string): Promise<boolean>;
  /** Marks every not-yet-started item of the batch `cancelled` or `expired`. */
  stopUnstartedItems(batchId: string, state: 'cancelled' | 'expired'): Promise<number>;
  /** True while any item of the batch is pending, queued or leased. */
  hasUnfinishedItems(batchId: string): Promise<boolean>;
  markFinalizing(batchId: string, nowMs: number): Promise<void>;
  /** Finished items in line order, read page by page (memory bounded by `pageSize`). */
  finishedItems(batchId: string, pageSize: number): AsyncIterable<FinishedItem>;
  /** Registers the output/error files and sets the final status, in one transaction. */
  completeBatch(
    batchId: string,
    status: FinalStatus,
    files: { output: FileRecord | null; error: FileRecord | null },
    nowMs: number,
  ): Promise<void>;

  // -- engine: the item queue
  claimItems(
    upstream: string,
    limit: number,
    leaseMs: number,
    nowMs: number,
  ): Promise<ClaimedItem[]>;
  /** Records, before their send, that these suspect items' requests go out (see ClaimedItem). */
  markSent(items: readonly { item_id: number; lease_gen: number }[]): Promise<void>;
  /** Applies outcomes whose lease is still held (fenced by lease_gen); returns how many applied. */
  recordOutcomes(outcomes: readonly ItemOutcome[], nowMs: number): Promise<number>;
  /**
   * Requeues items whose lease ran out (or every leased item, at start-up when `all`); an item
   * that lost `poisonAfter` leases is failed instead, so a line that kills the worker cannot loop.
   */
  releaseLeases(
    nowMs: number,
    opts: {
      all: boolean;
      poisonAfter: number;
      /** A requeued line whose request was out waits this × its lost leases before it runs again. */
      suspectDelayMs: number;
    },
  ): Promise<number>;

  close(): Promise<void>;
}
