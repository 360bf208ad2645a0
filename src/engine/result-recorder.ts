import type { ItemOutcome, RecordedLine } from '../domain/records.ts';
import { coerceError } from '../lib/coerce-error.ts';
import type { SpoolLengths } from '../store/store.ts';
import type { EngineDeps } from './engine-deps.ts';

const MAX_GROUP = 512;
// Each commit fsyncs the spools and the WAL; 10 ms groups keep that to a small share of the time.
const FLUSH_DELAY_MS = 10;
const RETRY_DELAY_MS = 1_000;

/** The spool a batch's output or error lines are appended to. */
export function spoolKey(batchId: string, file: 'output' | 'error'): string {
  return `${batchId}_${file}`;
}

/**
 * Group commit: outcomes from many finished calls are recorded together, a few ms apart. Their
 * lines are appended to the batch's output and error spools and fsynced, then one transaction
 * applies the outcomes and moves the spools' committed lengths past them; bytes a crash leaves
 * past a committed length are overwritten by the next group. One flush runs at a time, and work
 * that could take a lease away (the lease sweep) runs between flushes, so the outcomes checked
 * before the spool write are exactly the ones the transaction applies.
 */
export class ResultRecorder {
  readonly #deps: EngineDeps;
  #buffer: ItemOutcome[] = [];
  #timer: NodeJS.Timeout | null = null;
  #stopped = false;
  #lock: Promise<void> = Promise.resolve();
  /** Committed spool lengths of the batches this recorder has written to. */
  readonly #spools = new Map<string, SpoolLengths>();

  constructor(deps: EngineDeps) {
    this.#deps = deps;
  }

  push(outcome: ItemOutcome): void {
    this.#buffer.push(outcome);
    if (this.#buffer.length >= MAX_GROUP) this.#schedule(0);
    else this.#schedule(FLUSH_DELAY_MS);
  }

  /** Writes everything buffered; resolves once it is durable (or the write failed and was logged). */
  async flush(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.exclusive(async () => {
      if (this.#buffer.length === 0) return;
      const group = this.#buffer;
      this.#buffer = [];
      await this.#write(group);
    });
  }

  /**
   * After the engine's last flush: no more retries (the store is about to close). What is still
   * buffered was not recorded; its leases run out and its lines run again.
   */
  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  /** Runs `work` between flushes (nothing is recorded meanwhile). */
  exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(work);
    this.#lock = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** The batch's spools are published: forget their lengths. */
  forget(batchId: string): void {
    this.#spools.delete(batchId);
  }

  get pending(): number {
    return this.#buffer.length;
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
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
      const applicable = await store.applicableOutcomes(group);
      // A shared store writes the answers itself, in the same transaction.
      const lengths = store.shared
        ? new Map<string, SpoolLengths>()
        : await this.#appendLines(applicable);
      await store.recordOutcomes(applicable, lengths, clock.nowMs());
      for (const [batchId, l] of lengths) this.#spools.set(batchId, l);
    } catch (err) {
      logger.error(
        { err: coerceError(err).message, outcomes: group.length },
        'recording results failed; will retry',
      );
      this.#buffer = group.concat(this.#buffer);
      this.#schedule(RETRY_DELAY_MS);
    }
  }

  /** Appends the group's lines to their spools and fsyncs them; returns the new lengths. */
  async #appendLines(outcomes: readonly ItemOutcome[]): Promise<Map<string, SpoolLengths>> {
    const texts = new Map<string, { output: string[]; error: string[] }>();
    for (const o of outcomes) {
      const record: RecordedLine | undefined = 'record' in o ? o.record : undefined;
      if (!record) continue;
      let t = texts.get(record.batch_id);
      if (!t) texts.set(record.batch_id, (t = { output: [], error: [] }));
      t[record.file].push(record.text);
    }
    const lengths = new Map<string, SpoolLengths>();
    await Promise.all(
      [...texts].map(async ([batchId, t]) => {
        const committed = await this.#committed(batchId);
        lengths.set(batchId, {
          output_bytes: await this.#append(batchId, 'output', committed.output_bytes, t.output),
          error_bytes: await this.#append(batchId, 'error', committed.error_bytes, t.error),
        });
      }),
    );
    return lengths;
  }

  async #append(
    batchId: string,
    file: 'output' | 'error',
    position: number,
    lines: string[],
  ): Promise<number> {
    if (lines.length === 0) return position;
    const key = spoolKey(batchId, file);
    const data = Buffer.from(lines.join(''));
    await this.#deps.blobs.writeSpool(key, position, data);
    await this.#deps.blobs.syncSpool(key);
    return position + data.length;
  }

  async #committed(batchId: string): Promise<SpoolLengths> {
    let lengths = this.#spools.get(batchId);
    if (!lengths) {
      lengths = await this.#deps.store.spoolLengths(batchId);
      this.#spools.set(batchId, lengths);
    }
    return lengths;
  }
}
