import { createWriteStream } from 'node:fs';
import type { WriteStream } from 'node:fs';
import type { SimCall } from './types.ts';

/** Keeps the last `limit` calls in memory and appends each one to an optional JSONL file. */
export interface CallLog {
  append(call: Omit<SimCall, 'seq'>): void;
  list(): readonly SimCall[];
  clear(): void;
  /** Ends the file stream and waits until everything is written. */
  close(): Promise<void>;
}

export const CALL_LOG_LIMIT = 1_000_000;

export function createCallLog(logFile: string | undefined, limit = CALL_LOG_LIMIT): CallLog {
  let entries: SimCall[] = [];
  let seq = 0;
  let streamError: Error | null = null;
  const stream: WriteStream | null =
    logFile === undefined ? null : createWriteStream(logFile, { flags: 'a' });
  stream?.on('error', (error) => {
    streamError = error;
  });
  return {
    append: (call) => {
      seq += 1;
      const entry: SimCall = { seq, ...call };
      entries.push(entry);
      // Trim in batches of 10% so the cost of dropping old entries is amortised.
      if (entries.length > limit + Math.ceil(limit / 10)) entries = entries.slice(-limit);
      // Writable buffers while earlier writes are in flight and flushes them with writev.
      if (stream !== null && streamError === null) stream.write(`${JSON.stringify(entry)}\n`);
    },
    list: () => (entries.length > limit ? entries.slice(-limit) : entries.slice()),
    clear: () => {
      entries = [];
    },
    close: () => closeStream(stream, () => streamError),
  };
}

function closeStream(stream: WriteStream | null, failure: () => Error | null): Promise<void> {
  if (stream === null || stream.closed) return Promise.resolve();
  return new Promise((resolve, reject) => {
    stream.end((endError?: Error | null) => {
      const error = endError ?? failure();
      if (error === null || error === undefined) resolve();
      else reject(error);
    });
  });
}
