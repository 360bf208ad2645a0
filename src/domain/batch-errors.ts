import type { BatchError } from '../protocol/batch.ts';
import { truncateEcho } from './echo-limits.ts';

/** Entries a failed batch lists at most; the last entry then says how many there were. */
export const MAX_BATCH_ERRORS = 50;
/** And at most this many bytes of them (JSON), whatever their messages hold. */
const MAX_BATCH_ERRORS_BYTES = 32 * 1024;
const MAX_MESSAGE_CHARS = 512;
const MAX_PARAM_CHARS = 256;

/**
 * Collects a batch's validation errors with bounded memory: the lowest line numbers are kept
 * (lines arrive in order, duplicates later), everything is counted.
 */
export class BatchErrorList {
  #kept: BatchError[] = [];
  #total = 0;

  get total(): number {
    return this.#total;
  }

  push(error: BatchError): void {
    this.#total++;
    this.#kept.push(clip(error));
    if (this.#kept.length >= 2 * MAX_BATCH_ERRORS) this.#trim();
  }

  /**
   * The list to store: at most MAX_BATCH_ERRORS entries and ~32 KiB, file-level errors always
   * included, and a closing entry with the count when lines' errors were left out.
   */
  toList(fileLevel: readonly BatchError[] = []): BatchError[] {
    this.#trim();
    const total = this.#total + fileLevel.length;
    const tail = fileLevel.map(clip);
    let bytes = JSON.stringify(tail).length;
    const listed: BatchError[] = [];
    for (const error of this.#kept) {
      bytes += JSON.stringify(error).length;
      if (listed.length + tail.length >= MAX_BATCH_ERRORS - 1 || bytes > MAX_BATCH_ERRORS_BYTES)
        break;
      listed.push(error);
    }
    listed.push(...tail);
    if (listed.length === total) return listed;
    listed.push({
      code: 'too_many_errors',
      message: `${total} errors in all; only the first ${listed.length} are listed.`,
      param: null,
      line: null,
    });
    return listed;
  }

  #trim(): void {
    this.#kept.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
    this.#kept.length = Math.min(this.#kept.length, MAX_BATCH_ERRORS);
  }
}

function clip(error: BatchError): BatchError {
  return {
    ...error,
    message: truncateEcho(error.message, MAX_MESSAGE_CHARS),
    param: error.param === null ? null : truncateEcho(error.param, MAX_PARAM_CHARS),
  };
}
