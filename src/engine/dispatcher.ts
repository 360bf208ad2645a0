import type { ClaimedItem } from '../domain/records.ts';
import { coerceError } from '../lib/coerce-error.ts';
import { WakeSignal } from '../lib/wake-signal.ts';
import { ProviderError, type UpstreamResponse } from '../providers/provider.ts';
import { decideFromError, decideFromResponse, type Decision } from './decide-outcome.ts';
import type { EngineDeps } from './engine-deps.ts';
import type { Reservation, SendResult, UpstreamScheduler } from './limiter/upstream-scheduler.ts';
import type { ResultRecorder } from './result-recorder.ts';
import type { ThroughputMeter } from './throughput-meter.ts';

const IDLE_WAIT_MS = 1_000;
/** How far into the claimed queue admission looks past a blocked model (mixed-model batches). */
const ADMISSION_SCAN = 64;

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
 * Feeds one upstream: claims due items ahead, admits each through the upstream's scheduler
 * (buckets, cooldown, adaptive limit), calls the upstream with no transaction open, and hands
 * each outcome to the recorder. Real-time requests waiting on the same upstream go first.
 */
export class Dispatcher {
  readonly stats: DispatcherStats = { sent: 0, rateLimited: 0, maybePaidRetries: 0 };
  readonly scheduler: UpstreamScheduler;
  readonly #deps: EngineDeps;
  readonly #recorder: ResultRecorder;
  readonly #meter: ThroughputMeter;
  readonly #wake = new WakeSignal();
  readonly #inFlight = new Map<number, InFlight>();
  #realtimeInFlight = 0;
  /** Earliest not_before of the retries this dispatcher scheduled. */
  #nextRetryMs = Infinity;
  /** Claimed but not yet sent: claiming ahead keeps claim transactions (each an fsync) rare. */
  #local: ClaimedItem[] = [];

  constructor(
    deps: EngineDeps,
    scheduler: UpstreamScheduler,
    recorder: ResultRecorder,
    meter: ThroughputMeter,
  ) {
    this.#deps = deps;
    this.scheduler = scheduler;
    this.#recorder = recorder;
    this.#meter = meter;
  }

  wake(): void {
    this.#wake.wake();
  }

  get inFlightCount(): number {
    return this.#inFlight.size + this.#realtimeInFlight;
  }

  get claimedCount(): number {
    return this.#local.length;
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
          { upstream: this.scheduler.upstream.name, err: coerceError(err).message },
          'dispatch loop error',
        );
        await this.#wake.wait(IDLE_WAIT_MS, signal);
      }
    }
  }

  /** Releases claimed items, waits up to `graceMs` for in-flight calls, then aborts the rest. */
  async drain(graceMs: number): Promise<void> {
    for (const item of this.#local.splice(0)) this.#stopped(item, 'shutdown');
    const { clock } = this.#deps;
    const deadline = clock.nowMs() + graceMs;
    while (this.#inFlight.size > 0 && clock.nowMs() < deadline) await clock.sleep(20);
    for (const flight of this.#inFlight.values())
      flight.controller.abort('shutdown' satisfies StopReason);
    while (this.#inFlight.size > 0) await clock.sleep(5);
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
      if (flight.item.batch_id !== batchId) continue;
      flight.controller.abort(reason satisfies StopReason);
      aborted++;
    }
    return aborted;
  }

  /**
   * Waits until a real-time request may go (it counts against the same limits and goes ahead of
   * batch items), then returns the function that settles it.
   */
  async admitRealtime(
    model: string,
    body: Record<string, unknown>,
    signal: AbortSignal,
  ): Promise<(result: SendResult) => void> {
    const leave = this.scheduler.enterRealtime();
    try {
      for (;;) {
        let waitMs = 5;
        if (this.inFlightCount < this.scheduler.concurrencyLimit) {
          const admission = this.scheduler.tryAdmit(model, body);
          if (!('waitMs' in admission)) return this.#realtimeTicket(admission);
          waitMs = Math.min(admission.waitMs, 50);
        }
        await this.#deps.clock.sleep(waitMs, signal);
      }
    } finally {
      leave();
    }
  }

  #realtimeTicket(reservation: Reservation): (result: SendResult) => void {
    this.#realtimeInFlight++;
    let settled = false;
    return (result) => {
      if (settled) return;
      settled = true;
      this.#realtimeInFlight--;
      this.scheduler.settle(reservation, result, this.inFlightCount);
      this.#wake.wake();
    };
  }

  /** Starts admitted items in free slots, claiming ahead when the local queue runs low. */
  async #fill(): Promise<number> {
    const { store, clock, options } = this.#deps;
    const capacity = this.scheduler.upstream.maxConcurrency;
    // Claim in chunks of at least `capacity` (or when idle), not one item per finished call.
    const want = 2 * capacity - this.#local.length - this.#inFlight.size;
    if (want >= capacity || (this.#local.length === 0 && this.inFlightCount < capacity)) {
      this.#local.push(
        ...(await store.claimItems(
          this.scheduler.upstream.name,
          want,
          options.leaseMs,
          clock.nowMs(),
        )),
      );
    }
    if (this.scheduler.realtimeWaiting > 0) return 5; // real-time requests take the next slots
    const waitMs = await this.#startAdmitted();
    if (this.#local.length > 0 || this.inFlightCount >= this.scheduler.concurrencyLimit)
      return waitMs;
    // Retries this dispatcher scheduled are due at known times; anything else (left by an earlier
    // run) is found by the next claim, at most IDLE_WAIT_MS later.
    if (this.#nextRetryMs === Infinity) return IDLE_WAIT_MS;
    const dueInMs = this.#nextRetryMs - clock.nowMs();
    if (dueInMs <= 0) this.#nextRetryMs = Infinity;
    return Math.min(IDLE_WAIT_MS, Math.max(1, dueInMs));
  }

  /**
   * Sends every item the scheduler admits now; returns how long until the next may go. Suspects
   * (a lease of theirs was lost at a crash) are marked sent before their send, in one write.
   */
  async #startAdmitted(): Promise<number> {
    const admitted: [ClaimedItem, Reservation][] = [];
    const waitMs = this.#admit(admitted);
    const suspects = admitted.filter(([item]) => item.suspect);
    if (suspects.length > 0) await this.#deps.store.markSent(suspects.map(([item]) => item));
    for (const [item, reservation] of admitted) this.#start(item, reservation);
    return waitMs;
  }

  /** Moves the items the scheduler admits now into `admitted`; returns the wait for the next. */
  #admit(admitted: [ClaimedItem, Reservation][]): number {
    let waitMs = IDLE_WAIT_MS;
    let i = 0;
    while (
      this.inFlightCount + admitted.length < this.scheduler.concurrencyLimit &&
      i < this.#local.length &&
      i < ADMISSION_SCAN
    ) {
      const item = this.#local[i]!;
      const admission = this.scheduler.tryAdmit(item.model, item.body);
      if ('waitMs' in admission) {
        waitMs = Math.min(waitMs, Math.max(1, admission.waitMs));
        i++;
        continue;
      }
      this.#local.splice(i, 1);
      admitted.push([item, admission]);
    }
    return waitMs;
  }

  /** Per-call deadlines enforced from the loop: a timer per call costs more CPU than the call. */
  #abortOverdue(): void {
    const now = this.#deps.clock.nowMs();
    for (const flight of this.#inFlight.values()) {
      if (now >= flight.deadlineMs && !flight.controller.signal.aborted)
        flight.controller.abort('timeout' satisfies StopReason);
    }
  }

  #start(item: ClaimedItem, reservation: Reservation): void {
    const controller = new AbortController();
    const deadlineMs = this.#deps.clock.nowMs() + this.#deps.options.requestTimeoutMs;
    this.#inFlight.set(item.item_id, { item, controller, deadlineMs });
    this.stats.sent++;
    // Only a lease lost with its request out counts towards poison (engine README, invariant 4).
    if (!item.suspect)
      this.#recorder.push({ kind: 'sent', item_id: item.item_id, lease_gen: item.lease_gen });
    void this.#call(item, reservation, controller.signal).finally(() => {
      this.#inFlight.delete(item.item_id);
      this.#wake.wake();
    });
  }

  async #call(item: ClaimedItem, reservation: Reservation, stopSignal: AbortSignal): Promise<void> {
    const { clock, options } = this.#deps;
    let res: UpstreamResponse;
    try {
      res = await this.scheduler.upstream.send({
        path: item.endpoint,
        body: item.body,
        signal: stopSignal,
      });
    } catch (err) {
      const reason = stopSignal.reason as StopReason | undefined;
      if (stopSignal.aborted && reason !== 'timeout') {
        this.scheduler.settle(
          reservation,
          { status: null, headers: null, usage: null, retryAfterMs: null, overloaded: false },
          this.inFlightCount,
        );
        return this.#stopped(item, reason ?? 'shutdown');
      }
      const error =
        reason === 'timeout'
          ? new ProviderError('timeout', `no complete answer within ${options.requestTimeoutMs} ms`)
          : toProviderError(err);
      this.scheduler.settle(
        reservation,
        {
          status: null,
          headers: null,
          usage: null,
          retryAfterMs: null,
          overloaded: error.kind === 'timeout',
        },
        this.inFlightCount,
      );
      return this.#apply(item, decideFromError(item, error, options.retry, clock.nowMs()));
    }
    const decision = decideFromResponse(item, res, options.retry, clock.nowMs());
    this.scheduler.settle(reservation, sendResult(res, decision), this.inFlightCount);
    this.#apply(item, decision);
  }

  #apply(item: ClaimedItem, decision: Decision): void {
    if (decision.cooldownMs !== null) this.stats.rateLimited++;
    if (decision.maybePaid && decision.outcome.kind === 'retry') this.stats.maybePaidRetries++;
    if (decision.outcome.kind === 'retry')
      this.#nextRetryMs = Math.min(this.#nextRetryMs, decision.outcome.not_before_ms);
    if (decision.outcome.kind === 'response' || decision.outcome.kind === 'error')
      this.#meter.record(item.batch_id, this.#deps.clock.nowMs());
    this.#recorder.push(decision.outcome);
  }

  #stopped(item: ClaimedItem, reason: Exclude<StopReason, 'timeout'>): void {
    const key = { item_id: item.item_id, lease_gen: item.lease_gen };
    if (reason === 'shutdown')
      this.#recorder.push({ kind: 'release', ...key, refund_attempt: true });
    else this.#recorder.push({ kind: 'stop', ...key, state: reason });
  }
}

function toProviderError(err: unknown): ProviderError {
  if (err instanceof ProviderError) return err;
  return new ProviderError('connection', `upstream call failed: ${coerceError(err).message}`, {
    cause: err,
  });
}

function sendResult(res: UpstreamResponse, decision: Decision): SendResult {
  const usage = decision.outcome.kind === 'response' ? decision.outcome.usage : null;
  return {
    status: res.status,
    headers: res.headers,
    usage: usage ? { prompt: usage.input_tokens, total: usage.total_tokens } : null,
    retryAfterMs: decision.cooldownMs ?? res.failure?.retryAfterMs ?? null,
    overloaded: res.status === 503,
  };
}
