import type { Readable, Writable } from 'node:stream';

/** A blob being written: invisible until `commit`, gone after `abort`. */
export interface BlobWriter {
  readonly stream: Writable;
  /** Flushes, fsyncs and atomically publishes the blob under its key; returns its size. */
  commit(): Promise<number>;
  /** Drops the partial blob. Safe to call after a failed commit. */
  abort(): Promise<void>;
}

/**
 * File contents, kept apart from the row tables (design rule S4). Files appear whole or not at all.
 *
 * Spools are the output and error files of running batches, appended to as answers are recorded.
 * The store records how far each spool is committed; bytes past that are the remains of a write
 * whose commit never happened, overwritten by the next write and cut off when it is published.
 */
export interface BlobStore {
  createWriter(key: string): Promise<BlobWriter>;
  openRead(key: string): Readable;
  /** Bytes [start, end) of a blob (a chunk of an input file). */
  readRange(key: string, start: number, end: number): Promise<Buffer>;
  size(key: string): Promise<number | null>;
  remove(key: string): Promise<void>;
  /** Keys of every blob (to remove those no file row names any more after a crash). */
  listBlobs(): Promise<string[]>;

  /** Writes `data` into spool `key` at `position`; durable only after `syncSpool`. */
  writeSpool(key: string, position: number, data: Buffer): Promise<void>;
  syncSpool(key: string): Promise<void>;
  /**
   * Bytes [start, end) of spool `key` (results read while the batch runs; only its committed
   * range is meaningful). Rejects with ENOENT once the spool is gone (its batch ended).
   */
  readSpoolRange(key: string, start: number, end: number): Promise<Buffer>;
  /**
   * Cuts spool `key` to its committed `bytes`, appends `extra`, makes it durable and publishes it
   * as blob `fileKey` (replacing one left by an interrupted publish). Returns the blob's size;
   * nothing is published when that is 0. The spool stays until `removeSpool`.
   */
  publishSpool(
    key: string,
    bytes: number,
    fileKey: string,
    extra: AsyncIterable<string> | null,
  ): Promise<number>;
  removeSpool(key: string): Promise<void>;
  /** Keys of the spools on disk (to clean up after batches that ended). */
  listSpools(): Promise<string[]>;
  /** Closes open spool handles. */
  close(): Promise<void>;
}
