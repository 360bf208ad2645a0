import type { Readable, Writable } from 'node:stream';

/** A blob being written: invisible until `commit`, gone after `abort`. */
export interface BlobWriter {
  readonly stream: Writable;
  /** Flushes, fsyncs and atomically publishes the blob under its key; returns its size. */
  commit(): Promise<number>;
  /** Drops the partial blob. Safe to call after a failed commit. */
  abort(): Promise<void>;
}

/** File contents, kept apart from the row tables (design rule S4). Files appear whole or not at all. */
export interface BlobStore {
  createWriter(key: string): Promise<BlobWriter>;
  openRead(key: string): Readable;
  size(key: string): Promise<number | null>;
  remove(key: string): Promise<void>;
}
