import { IDEMPOTENCY_TTL_MS } from '../domain/idempotency-ttl.ts';
import type { BatchRecord } from '../domain/records.ts';
import { coerceError } from '../lib/coerce-error.ts';
import type { Dispatcher } from './dispatcher.ts';
import type { EngineDeps } from './engine-deps.ts';
import { finalizeBatch } from './finalizer.ts';
import { ingestBatch, queueAllPending } from './ingest.ts';
import type { ResultRecorder } from './result-recorder.ts';

const ACTIVE_STATUSES = ['validating', 'in_progress', 'cancelling', 'finalizing'] as const;
const TERMINAL = new Set(['completed', 'failed', 'expired', 'cancelled']);
const FILE_SWEEP_EVERY_MS = 60_000;
/**
 * A line in flight when its process died runs again only after the others had 5 s (10 s, …):
 * poison lines are still caught, innocent ones are not charged for crashes that follow a restart.
 */
export const SUSPECT_DELAY_MS = 5_000;

/**
 * The batch-level loop: starts ingest of new batches, applies expiry and cancel graces, releases
 * lost leases and finalizes batches whose items are all terminal. Long steps (ingest, finalize)
 * run as tracked tasks, one per batch, so one big file never stalls the others.
 */
export class Supervisor {
  readonly #deps: EngineDeps;
  readonly #dispatchers: readonly Dispatcher[];
  readonly #recorder: ResultRecorder;
  readonly #tasks = new Map<string, Promise<void>>();
  #lastFileSweepMs = 0;

  constructor(deps: EngineDeps, dispatchers: readonly Dispatcher[], recorder: ResultRecorder) {
    this.#deps = deps;
    this.#dispatchers = dispatchers;
    this.#recorder = recorder;
  }

  /** One pass over every active batch. */
  async tick(): Promise<void> {
    const { store, clock, options } = this.#deps;
    // Between recorder flushes: a flush checks its leases before writing the spools.
    const sweep = await this.#recorder.exclusive(() =>
      store.releaseLeases(clock.nowMs(), {
        all: false,
        poisonAfter: options.poisonAfter,
        suspectDelayMs: SUSPECT_DELAY_MS,
      }),
    );
    if (sweep.revoked.length > 0) {
      for (const d of this.#dispatchers) d.dropRevoked(sweep.revoked);
      this.#deps.logger.warn(
        { chunks: sweep.revoked.length, poisoned: sweep.poisoned },
        'leases ran out; their lines go back to the queue',
      );
    }
    for (const batch of await store.batchesWithStatus(ACTIVE_STATUSES)) {
      if (this.#tasks.has(batch.id)) continue;
      await this.#step(batch);
    }
    await this.#sweepFiles();
  }

  /** Waits for running ingest/finalize tasks (used on shutdown). */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.#tasks.values()]);
  }

  async #step(batch: BatchRecord): Promise<void> {
    const { store, clock, options } = this.#deps;
    const now = clock.nowMs();
    switch (batch.status) {
      case 'validating':
        if (now >= batch.expires_at_ms)
          return this.#spawnDuty(batch, () => this.#expireUnvalidated(batch));
        return this.#spawnDuty(batch, () => ingestBatch(this.#deps, batch));
      case 'in_progress':
        if (now >= batch.expires_at_ms) {
          await store.stopUnstartedItems(batch.id, 'expired');
          this.#dropUnsent(batch.id, 'expired');
          if (now >= batch.expires_at_ms + options.expiryGraceMs)
            this.#abortInFlight(batch.id, 'expired');
        } else if (await store.hasPendingItems(batch.id)) {
          // Started, but a crash cut the release of its items short.
          return this.#spawnDuty(batch, () => queueAllPending(this.#deps, batch.id));
        }
        return this.#finalizeIfDone(batch);
      case 'cancelling':
        await store.stopUnstartedItems(batch.id, 'cancelled');
        this.#dropUnsent(batch.id, 'cancelled', batch.stop_code);
        if (now >= (batch.cancelling_at_ms ?? now) + options.cancelGraceMs)
          this.#abortInFlight(batch.id, 'cancelled');
        return this.#finalizeIfDone(batch);
      case 'finalizing':
        return this.#spawnDuty(batch, () => this.#finalize(batch));
      case 'failed':
      case 'completed':
      case 'expired':
      case 'cancelled':
        return;
    }
  }

  async #finalizeIfDone(batch: BatchRecord): Promise<void> {
    if (await this.#deps.store.hasUnfinishedItems(batch.id)) return;
    const expired = this.#deps.clock.nowMs() >= batch.expires_at_ms;
    if (batch.status === 'in_progress' && !expired) {
      await this.#deps.store.markFinalizing(batch.id, this.#deps.clock.nowMs());
    }
    this.#spawnDuty(batch, () => this.#finalize(batch));
  }

  async #finalize(batch: BatchRecord): Promise<void> {
    const status = await finalizeBatch(this.#deps, batch);
    this.#recorder.forget(batch.id);
    this.#deps.logger.info({ batchId: batch.id, status }, 'batch finished');
  }

  /** Spools whose batch ended (a crash came between its finalizing and their removal). */
  async removeStaleSpools(): Promise<void> {
    const { store, blobs } = this.#deps;
    for (const key of await blobs.listSpools()) {
      const batchId = key.replace(/_(output|error)$/, '');
      const batch = await store.getBatchById(batchId);
      if (!batch || TERMINAL.has(batch.status)) await blobs.removeSpool(key);
    }
  }

  /**
   * Blobs no file row names: a crash came between deleting an expired or deleted file's row and
   * its blob (or between an upload's blob and its row). Run at start-up, before uploads begin.
   */
  async removeOrphanBlobs(): Promise<number> {
    const { store, blobs } = this.#deps;
    const orphans = await store.unneededBlobs(await blobs.listBlobs());
    for (const id of orphans) await blobs.remove(id);
    return orphans.length;
  }

  /** A batch still validating at its deadline: its file never got checked, so nothing ran. */
  async #expireUnvalidated(batch: BatchRecord): Promise<void> {
    await this.#deps.store.markInProgress(batch.id, 0, null, this.#deps.clock.nowMs());
    await this.#deps.store.resetIngest(batch.id); // lines a crashed ingest left behind never run
    await this.#deps.store.completeBatch(
      batch.id,
      'expired',
      { output: null, error: null },
      this.#deps.clock.nowMs(),
    );
  }

  #dropUnsent(batchId: string, reason: 'cancelled' | 'expired', stopCode?: string | null): void {
    for (const dispatcher of this.#dispatchers) dispatcher.dropUnsent(batchId, reason, stopCode);
  }

  #abortInFlight(batchId: string, reason: 'cancelled' | 'expired'): void {
    for (const dispatcher of this.#dispatchers) dispatcher.abortBatch(batchId, reason);
  }

  /**
   * Runs a once-only step of `batch` (ingest, release, finalize) unless another process of a
   * shared store is running one for it. Under the duty the batch is read again: a step another
   * process finished meanwhile (the batch moved on to a later status) is not done twice.
   */
  #spawnDuty(batch: BatchRecord, task: () => Promise<void>): void {
    const { store } = this.#deps;
    this.#spawn(batch, async () => {
      await store.withBatchDuty(batch.id, async () => {
        const fresh = await store.getBatchById(batch.id);
        if (fresh && stillDue(batch.status, fresh.status)) await task();
      });
    });
  }

  #spawn(batch: BatchRecord, task: () => Promise<void>): void {
    const run = task()
      .catch((err: unknown) => {
        this.#deps.logger.error(
          { batchId: batch.id, status: batch.status, err: coerceError(err).message },
          'batch step failed; will retry',
        );
      })
      .finally(() => this.#tasks.delete(batch.id));
    this.#tasks.set(batch.id, run);
  }

  async #sweepFiles(): Promise<void> {
    const { store, blobs, clock } = this.#deps;
    const now = clock.nowMs();
    if (now - this.#lastFileSweepMs < FILE_SWEEP_EVERY_MS) return;
    this.#lastFileSweepMs = now;
    for (const id of await store.deleteExpiredFiles(now, 1_000))
      if (!(await store.fileInUse(id))) await blobs.remove(id);
    await store.purgeIdempotencyKeys(now - IDEMPOTENCY_TTL_MS);
  }
}

/** A step planned for a batch in status `planned` still applies when it is now in `now`. */
function stillDue(planned: string, now: string): boolean {
  if (TERMINAL.has(now)) return false;
  // in_progress → finalizing is the step's own first move (markFinalizing comes before it).
  return now === planned || (planned === 'in_progress' && now === 'finalizing');
}
