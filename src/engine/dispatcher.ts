import type { ClaimedItem } from '../domain/records.ts';
import { coerceError } from '../lib/coerce-error.ts';
import { WakeSignal } from '../lib/wake-signal.ts';
import { ProviderError, type Upstream } from '../providers/provider.ts';
import { decideFromError, decideFromResponse } from './decide-outcome.ts';
import type { EngineDeps } from './engine-deps.ts';
import type { ResultRecorder } from './result-recorder.ts';

const IDLE_WAIT_MS = 1_000;

type StopReason = 'cancelled' | 'expired' | 'shutdown';

interface InFlight {
  item: ClaimedItem;
  controller: AbortController;
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
    const deadline = this.#deps.clock.nowMs() + graceMs;
    while (this.#inFlight.size > 0 && this.#deps.clock.nowMs() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    for (const flight of this.#inFlight.values())
      flight.controller.abort('shutdown' satisfies StopReason);
    while (this.#inFlight.size > 0) await new Promise((resolve) => setTimeout(resolve, 5));
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

  /** Claims up to the free slots and starts the calls; returns how long to sleep if idle. */
  async #fill(): Promise<number> {
    const { store, clock, options } = this.#deps;
    const now = clock.nowMs();
    if (now < this.#cooldownUntilMs) return this.#cooldownUntilMs - now;
    const free = this.#upstream.maxConcurrency - this.#inFlight.size;
    if (free <= 0) return IDLE_WAIT_MS;
    const items = await store.claimItems(this.#upstream.name, free, options.leaseMs, now);
    for (const item of items) this.#start(item);
    if (items.length === free) return IDLE_WAIT_MS; // slots full: a finishing call wakes us
    const due = await store.nextDueMs(this.#upstream.name);
    return due === null ? IDLE_WAIT_MS : Math.min(IDLE_WAIT_MS, Math.max(1, due - clock.nowMs()));
  }

  #start(item: ClaimedItem): void {
    const controller = new AbortController();
    this.#inFlight.set(item.item_id, { item, controller });
    this.stats.sent++;
    void this.#call(item, controller.signal).finally(() => {
      this.#inFlight.delete(item.item_id);
      this.#wake.wake();
    });
  }

  async #call(item: ClaimedItem, stopSignal: AbortSignal): Promise<void> {
    const { clock, options } = this.#deps;
    const signal = AbortSignal.any([stopSignal, AbortSignal.timeout(options.requestTimeoutMs)]);
    try {
      const res = await this.#upstream.send({ path: item.endpoint, body: item.body, signal });
      this.#apply(decideFromResponse(item, res, options.retry, clock.nowMs()));
    } catch (err) {
      if (stopSignal.aborted) return this.#stopped(item, stopSignal.reason as StopReason);
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

  #stopped(item: ClaimedItem, reason: StopReason): void {
    const key = { item_id: item.item_id, lease_gen: item.lease_gen };
    if (reason === 'shutdown')
      this.#recorder.push({ kind: 'release', ...key, refund_attempt: true });
    else this.#recorder.push({ kind: 'stop', ...key, state: reason });
  }
}
