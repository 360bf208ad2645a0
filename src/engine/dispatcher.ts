import type { ClaimedItem } from '../domain/records.ts';
import { coerceError } from '../lib/coerce-error.ts';
import { WakeSignal } from '../lib/wake-signal.ts';
import { ProviderError, type Upstream } from '../providers/provider.ts';
import { decideFromError, decideFromResponse } from './decide-outcome.ts';
import type { EngineDeps } from './engine-deps.ts';
import type { ResultRecorder } from './result-recorder.ts';

const IDLE_WAIT_MS = 1_000;

type StopReason = 'cancelled' | 'expired' | 'shutdown' | 'timeout';

interface InFlight {
  item: ClaimedItem;
  controller: AbortController;
  deadlineMs: number;
}

/** Counters a dispatcher keeps for visibility and benchmarks. */
export interface DispatcherStats {
  sent: number;
  rateLimited: number;
  maybePaidRetries: number;
}

/**
 * Feeds one upstream: claims due items while it has free slots, calls the upstream with no
 * transaction open, and hands each outcome to the recorder. A 429 pauses the whole upstream
 * until its retry-after (one shared cooldown, design.md invariant 5).
 */
export class Dispatcher {
  readonly stats: DispatcherStats = { sent: 0, rateLimited: 0, maybePaidRetries: 0 };
  readonly #deps: EngineDeps;
  readonly #upstream: Upstream;
  readonly #recorder: ResultRecorder;
  readonly #wake = new WakeSignal();
  readonly #inFlight = new Map<number, InFlight>();
  /** Claimed but not yet sent: claiming ahead keeps claim transactions (each an fsync) rare. */
  #local: ClaimedItem[] = [];
  #cooldownUntilMs = 0;

  constructor(deps: EngineDeps, upstream: Upstream, recorder: ResultRecorder) {
    this.#deps = deps;
    this.#upstream = upstream;
    this.#recorder = recorder;
  }

  wake(): void {
    this.#wake.wake();
  }

  get inFlightCount(): number {
    return this.#inFlight.size;
  }

  /** Claims and sends until `signal` aborts; then waits for in-flight calls (see `drain`). */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        this.#abortOverdue();
        const waitMs = await this.#fill();
        await this.#wake.wait(waitMs, signal);
      } catch (err) {
        this.#deps.logger.error(
          { upstream: this.#upstream.name, err: coerceError(err).message },
          'dispatch loop error',
        );
        await this.#wake.wait(IDLE_WAIT_MS, signal);
      }
    }
  }

  /** Waits up to `graceMs` for in-flight calls, then aborts the rest (they are released, unpaid-for results lost). */
  async drain(graceMs: number): Promise<void> {
    for (const item of this.#local.splice(0)) this.#stopped(item, 'shutdown');
    const deadline = this.#deps.clock.nowMs() + graceMs;
    while (this.#inFlight.size > 0 && this.#deps.clock.nowMs() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    for (const flight of this.#inFlight.values())
      flight.controller.abort('shutdown' satisfies StopReason);
    while (this.#inFlight.size > 0) await new Promise((resolve) => setTimeout(resolve, 5));
  }

  /** Drops claimed-but-unsent items of a batch that was cancelled or expired: they never run. */
  dropUnsent(batchId: string, reason: 'cancelled' | 'expired'): void {
    const keep: ClaimedItem[] = [];
    for (const item of this.#local) {
      if (item.batch_id === batchId) this.#stopped(item, reason);
      else keep.push(item);
    }
    this.#local = keep;
  }

  /** Aborts in-flight calls of one batch whose cancel or expiry grace ran out. */
  abortBatch(batchId: string, reason: 'cancelled' | 'expired'): number {
    let aborted = 0;
    for (const flight of this.#inFlight.values()) {
      if (flight.item.batch_id === batchId) {
        flight.controller.abort(reason satisfies StopReason);
        aborted++;
      }
    }
    return aborted;
  }

  /** Starts claimed items in free slots, claiming ahead when the local queue runs low. */
  async #fill(): Promise<number> {
    const { store, clock, options } = this.#deps;
    const now = clock.nowMs();
    if (now < this.#cooldownUntilMs) return this.#cooldownUntilMs - now;
    const capacity = this.#upstream.maxConcurrency;
    // Claim in chunks of at least `capacity` (or when idle), not one item per finished call.
    const want = 2 * capacity - this.#local.length - this.#inFlight.size;
    if (want >= capacity || (this.#local.length === 0 && this.#inFlight.size < capacity)) {
      this.#local.push(
        ...(await store.claimItems(this.#upstream.name, want, options.leaseMs, now)),
      );
    }
    while (this.#inFlight.size < capacity && this.#local.length > 0)
      this.#start(this.#local.shift()!);
    if (this.#local.length > 0 || this.#inFlight.size >= capacity) return IDLE_WAIT_MS; // a finishing call wakes us
    const due = await store.nextDueMs(this.#upstream.name);
    return due === null ? IDLE_WAIT_MS : Math.min(IDLE_WAIT_MS, Math.max(1, due - clock.nowMs()));
  }

  /**
   * Enforces the per-call deadline from the loop (woken at least every second) instead of a
   * timer per call: AbortSignal.timeout + any() cost more CPU per request than the HTTP call.
   */
  #abortOverdue(): void {
    const now = this.#deps.clock.nowMs();
    for (const flight of this.#inFlight.values()) {
      if (now >= flight.deadlineMs && !flight.controller.signal.aborted)
        flight.controller.abort('timeout' satisfies StopReason);
    }
  }

  #start(item: ClaimedItem): void {
    const controller = new AbortController();
    const deadlineMs = this.#deps.clock.nowMs() + this.#deps.options.requestTimeoutMs;
    this.#inFlight.set(item.item_id, { item, controller, deadlineMs });
    this.stats.sent++;
    void this.#call(item, controller.signal).finally(() => {
      this.#inFlight.delete(item.item_id);
      this.#wake.wake();
    });
  }

  async #call(item: ClaimedItem, stopSignal: AbortSignal): Promise<void> {
    const { clock, options } = this.#deps;
    try {
      const res = await this.#upstream.send({
        path: item.endpoint,
        body: item.body,
        signal: stopSignal,
      });
      this.#apply(decideFromResponse(item, res, options.retry, clock.nowMs()));
    } catch (err) {
      const reason = stopSignal.reason as StopReason | undefined;
      if (stopSignal.aborted && reason !== 'timeout')
        return this.#stopped(item, reason ?? 'shutdown');
      if (reason === 'timeout') {
        const timeout = new ProviderError(
          'timeout',
          `no complete answer within ${options.requestTimeoutMs} ms`,
          { maybeSent: true },
        );
        return this.#apply(decideFromError(item, timeout, options.retry, clock.nowMs()));
      }
      const error =
        err instanceof ProviderError
          ? err
          : new ProviderError('timeout', `upstream call failed: ${coerceError(err).message}`, {
              cause: err,
            });
      this.#apply(decideFromError(item, error, options.retry, clock.nowMs()));
    }
  }

  #apply(decision: ReturnType<typeof decideFromResponse>): void {
    if (decision.cooldownMs !== null) {
      this.stats.rateLimited++;
      this.#cooldownUntilMs = Math.max(
        this.#cooldownUntilMs,
        this.#deps.clock.nowMs() + decision.cooldownMs,
      );
    }
    if (decision.maybePaid && decision.outcome.kind === 'retry') this.stats.maybePaidRetries++;
    this.#recorder.push(decision.outcome);
  }

  #stopped(item: ClaimedItem, reason: Exclude<StopReason, 'timeout'>): void {
    const key = { item_id: item.item_id, lease_gen: item.lease_gen };
    if (reason === 'shutdown')
      this.#recorder.push({ kind: 'release', ...key, refund_attempt: true });
    else this.#recorder.push({ kind: 'stop', ...key, state: reason });
  }
}
