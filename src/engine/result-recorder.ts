import type { ItemOutcome } from '../domain/records.ts';
import { coerceError } from '../lib/coerce-error.ts';
import type { EngineDeps } from './engine-deps.ts';

const MAX_GROUP = 512;
// Each commit fsyncs the WAL and blocks the event loop; 10 ms groups keep that under ~10% of the time.
const FLUSH_DELAY_MS = 10;
const RETRY_DELAY_MS = 1_000;

/**
 * Group commit: outcomes from many finished calls are written in one transaction, a few ms
 * apart, so synchronous=FULL costs one fsync per group rather than per line. One flush runs at a
 * time; a failed write keeps its outcomes and tries again (their leases still fence them).
 */
export class ResultRecorder {
  readonly #deps: EngineDeps;
  readonly #onRecorded: () => void;
  #buffer: ItemOutcome[] = [];
  #timer: NodeJS.Timeout | null = null;
  #flushing: Promise<void> | null = null;

  constructor(deps: EngineDeps, onRecorded: () => void) {
    this.#deps = deps;
    this.#onRecorded = onRecorded;
  }

  push(outcome: ItemOutcome): void {
    this.#buffer.push(outcome);
    if (this.#buffer.length >= MAX_GROUP) this.#schedule(0);
    else this.#schedule(FLUSH_DELAY_MS);
  }

  /** Writes everything buffered; resolves once it is durable (or the write failed and was logged). */
  async flush(): Promise<void> {
    while (this.#flushing) await this.#flushing;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#buffer.length === 0) return;
    const group = this.#buffer;
    this.#buffer = [];
    this.#flushing = this.#write(group);
    try {
      await this.#flushing;
    } finally {
      this.#flushing = null;
    }
  }

  get pending(): number {
    return this.#buffer.length;
  }

  #schedule(delayMs: number): void {
    if (this.#timer && delayMs > 0) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.flush(); // errors are caught inside #write
    }, delayMs);
  }

  async #write(group: ItemOutcome[]): Promise<void> {
    const { store, clock, logger } = this.#deps;
    try {
      await store.recordOutcomes(group, clock.nowMs());
      this.#onRecorded();
    } catch (err) {
      logger.error(
        { err: coerceError(err).message, outcomes: group.length },
        'recording results failed; will retry',
      );
      this.#buffer = group.concat(this.#buffer);
      this.#schedule(RETRY_DELAY_MS);
    }
  }
}
