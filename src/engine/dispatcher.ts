import type { ChunkLease, ClaimedChunk, ClaimedItem } from '../domain/records.ts';
import { CallStop } from '../lib/call-stop.ts';
import { coerceError } from '../lib/coerce-error.ts';
import { WakeSignal } from '../lib/wake-signal.ts';
import { ProviderError, type UpstreamResponse } from '../providers/provider.ts';
import { loadChunkLines } from './chunk-lines-loader.ts';
import { ClaimedLines } from './claimed-lines.ts';
import { decideFromError, decideFromResponse, type Decision } from './decide-outcome.ts';
import { notRunLine } from './output-lines.ts';
import type { EngineDeps } from './engine-deps.ts';
import type { Reservation, SendResult, UpstreamScheduler } from './limiter/upstream-scheduler.ts';
import type { ResultRecorder } from './result-recorder.ts';
import type { ThroughputMeter } from './throughput-meter.ts';
import type { CostControl } from './cost-control.ts';
import type { ResponseCache } from './response-cache.ts';
import { withPromptCacheKey, type PrefixOrder } from './prefix-order.ts';

/** The cost controls a dispatcher consults (issue 13): spend caps, canary, response cache. */
export interface DispatchControls {
  costs: CostControl;
  cache: ResponseCache;
  /** Prefix-aware order of claimed lines (null: claim order). */
  prefixOrder: PrefixOrder | null;
  /** Upstreams (OpenAI's) whose lines get a `prompt_cache_key` when they have none. */
  promptCacheKeys: ReadonlySet<string>;
}

const IDLE_WAIT_MS = 1_000;
/** How far into the claimed queue admission looks past a blocked model (mixed-model batches). */
const ADMISSION_SCAN = 64;
/** Request bodies claimed ahead are held in memory up to about this much (large vision lines). */
const CLAIM_AHEAD_BYTES = 8 * 1024 * 1024;
/** Under a rate limit, lines are claimed about this far ahead of when they can be sent. */
const CLAIM_AHEAD_MS = 500;
/**
 * Request bodies in flight are held to about this much (one call always may go): with lines of
 * hundreds of KB (inline images), memory stays bounded by this, not by concurrency × line size.
 */
const IN_FLIGHT_BYTES = 24 * 1024 * 1024;

type StopReason = 'cancelled' | 'expired' | 'shutdown' | 'timeout';

interface InFlight {
  item: ClaimedItem;
  stop: CallStop;
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
  readonly #inFlight = new Set<InFlight>();
  #inFlightBytes = 0;
  /** Claimed ahead, not yet sent: claiming ahead keeps claim transactions rare. */
  readonly #claimed = new ClaimedLines();
  #lastRenewMs = 0;
  #realtimeInFlight = 0;
  /** Earliest not_before of the retries this dispatcher scheduled. */
  #nextRetryMs = Infinity;
  readonly #controls: DispatchControls | null;

  constructor(
    deps: EngineDeps,
    scheduler: UpstreamScheduler,
    recorder: ResultRecorder,
    meter: ThroughputMeter,
    controls: DispatchControls | null = null,
  ) {
    this.#deps = deps;
    this.scheduler = scheduler;
    this.#recorder = recorder;
    this.#meter = meter;
    this.#controls = controls;
  }

  wake(): void {
    this.#wake.wake();
  }

  get inFlightCount(): number {
    return this.#inFlight.size + this.#realtimeInFlight;
  }

  get claimedCount(): number {
    return this.#claimed.length;
  }

  /** Claims and sends until `signal` aborts; then waits for in-flight calls (see `drain`). */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        this.#abortOverdue();
        this.#claimed.pruneStopped(this.#deps.clock.nowMs());
        await this.#renewLeases();
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
    this.#claimed.take(() => true);
    const { clock } = this.#deps;
    const deadline = clock.nowMs() + graceMs;
    while (this.#inFlight.size > 0 && clock.nowMs() < deadline) await clock.sleep(20);
    for (const flight of this.#inFlight) flight.stop.stop('shutdown' satisfies StopReason);
    while (this.#inFlight.size > 0) await clock.sleep(5);
    // Whatever is not done goes back to the queue with its attempt refunded.
    for (const lease of this.#claimed.releaseAll())
      this.#recorder.push({ kind: 'release', ...lease, refund_attempt: true });
  }

  /** Drops claimed-but-unsent items of a batch that was cancelled or expired: they never run. */
  dropUnsent(batchId: string, reason: 'cancelled' | 'expired', stopCode?: string | null): void {
    // Stopped early by another process (spend cap, canary): its not-run lines say why here too.
    if (stopCode) this.#controls?.costs.noteStopCode(batchId, stopCode);
    const unsent = this.#claimed.stopBatch(batchId, reason, this.#deps.clock.nowMs());
    for (const item of unsent) this.#stopped(item, reason);
  }

  /** Forgets chunks whose lease was taken back (it ran out): their lines are no longer ours. */
  dropRevoked(leases: readonly ChunkLease[]): void {
    this.#claimed.revoke(leases);
  }

  /** Aborts in-flight calls of one batch whose cancel or expiry grace ran out. */
  abortBatch(batchId: string, reason: 'cancelled' | 'expired'): number {
    let aborted = 0;
    for (const flight of this.#inFlight) {
      if (flight.item.batch_id !== batchId) continue;
      flight.stop.stop(reason satisfies StopReason);
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
    const ahead = this.#claimAheadLines(capacity);
    // Claim in chunks of at least half the target (or when idle), not one item per finished call.
    const want = ahead - this.#claimed.length - this.#inFlight.size;
    const roomBytes = CLAIM_AHEAD_BYTES - this.#claimed.bytes;
    if (
      roomBytes > 0 &&
      (2 * want >= ahead || (this.#claimed.length === 0 && this.inFlightCount < capacity))
    ) {
      const chunks = await store.claimChunks(
        this.scheduler.upstream.name,
        { maxLines: Math.max(1, want), maxBytes: roomBytes },
        options.leaseMs,
        clock.nowMs(),
      );
      for (const chunk of chunks) await this.#take(chunk);
      const prefixOrder = this.#controls?.prefixOrder;
      if (prefixOrder && chunks.length > 0)
        this.#claimed.reorder((lines) => prefixOrder.order(lines));
    }
    if (this.scheduler.realtimeWaiting > 0) return 5; // real-time requests take the next slots
    const waitMs = await this.#startAdmitted();
    if (this.#claimed.length > 0 || this.inFlightCount >= this.scheduler.concurrencyLimit)
      return waitMs;
    // Retries this dispatcher scheduled are due at known times; anything else (left by an earlier
    // run) is found by the next claim, at most IDLE_WAIT_MS later.
    if (this.#nextRetryMs === Infinity) return IDLE_WAIT_MS;
    const dueInMs = this.#nextRetryMs - clock.nowMs();
    if (dueInMs <= 0) this.#nextRetryMs = Infinity;
    return Math.min(IDLE_WAIT_MS, Math.max(1, dueInMs));
  }

  /**
   * Lines to hold claimed or in flight: two rounds of the concurrency limit, or, under a rate
   * limit, about CLAIM_AHEAD_MS of sends at this process's rate when that is less. Lines claimed
   * ahead wait for this process only: with several processes on one batch, a process holding many
   * at a small share would finish long after the others ran dry.
   */
  #claimAheadLines(capacity: number): number {
    const perSecond = this.scheduler.requestsPerSecond();
    const byRate = perSecond === null ? Infinity : Math.ceil((perSecond * CLAIM_AHEAD_MS) / 1_000);
    return Math.max(2, Math.min(2 * capacity, byRate));
  }

  /** Adds a claimed chunk's lines to the local queue (a chunk that cannot be read goes back). */
  async #take(chunk: ClaimedChunk): Promise<void> {
    const lease = { chunk_id: chunk.chunk_id, lease_gen: chunk.lease_gen };
    let items: ClaimedItem[];
    try {
      items = await loadChunkLines(this.#deps.blobs, chunk);
      await this.#controls?.costs.prepare(chunk.batch_id);
    } catch (err) {
      this.#deps.logger.error(
        { batchId: chunk.batch_id, chunkId: chunk.chunk_id, err: coerceError(err).message },
        'cannot read the lines of a claimed chunk; releasing it',
      );
      this.#recorder.push({ kind: 'release', ...lease, refund_attempt: true });
      return;
    }
    const stopped = this.#claimed.add(lease, chunk.batch_id, items);
    if (stopped) for (const item of items) this.#stopped(item, stopped);
  }

  /**
   * Keeps the leases of held chunks from running out while their lines wait for admission (a
   * chunk can take longer than one call under tight rate limits): renewed every third of a lease.
   */
  async #renewLeases(): Promise<void> {
    const { store, clock, options } = this.#deps;
    const now = clock.nowMs();
    if (now - this.#lastRenewMs < options.leaseMs / 3) return;
    this.#lastRenewMs = now;
    const leases = this.#claimed.heldLeases;
    if (leases.length > 0) await store.renewLeases(leases, now + options.leaseMs);
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
    for (const [item, reservation] of admitted) {
      const stop = this.#claimed.stoppedState(item.batch_id);
      if (stop === undefined) this.#start(item, reservation);
      else {
        this.scheduler.settle(reservation, NOT_SENT, this.inFlightCount);
        this.#controls?.costs.ended(item);
        this.#stopped(item, stop);
      }
    }
    return waitMs;
  }

  /** Moves the items the scheduler admits now into `admitted`; returns the wait for the next. */
  #admit(admitted: [ClaimedItem, Reservation][]): number {
    let waitMs = IDLE_WAIT_MS;
    let i = 0;
    let bytes = this.#inFlightBytes;
    while (
      this.inFlightCount + admitted.length < this.scheduler.concurrencyLimit &&
      i < this.#claimed.length &&
      i < ADMISSION_SCAN
    ) {
      const item = this.#claimed.at(i)!;
      if (bytes > 0 && bytes + item.body.length > IN_FLIGHT_BYTES) break;
      // Spend cap: a line waits while what is in flight may still cost less than its bound.
      if (
        this.#controls &&
        this.#controls.costs.gate(item, this.scheduler.upstream.name) !== 'go'
      ) {
        i++;
        continue;
      }
      const admission = this.scheduler.tryAdmit(item.model, item.body, item);
      if ('waitMs' in admission) {
        this.#controls?.costs.ended(item); // gave back what the spend cap reserved
        waitMs = Math.min(waitMs, Math.max(1, admission.waitMs));
        i++;
        continue;
      }
      bytes += item.body.length;
      admitted.push([this.#claimed.removeAt(i), admission]);
    }
    return waitMs;
  }

  /** Per-call deadlines enforced from the loop: a timer per call costs more CPU than the call. */
  #abortOverdue(): void {
    const now = this.#deps.clock.nowMs();
    for (const flight of this.#inFlight) {
      if (now >= flight.deadlineMs && !flight.stop.stopped)
        flight.stop.stop('timeout' satisfies StopReason);
    }
  }

  #start(item: ClaimedItem, reservation: Reservation): void {
    const stop = new CallStop();
    const deadlineMs = this.#deps.clock.nowMs() + this.#deps.options.requestTimeoutMs;
    const flight = { item, stop, deadlineMs };
    this.#inFlight.add(flight);
    this.#inFlightBytes += item.body.length;
    this.stats.sent++;
    // Only a lease lost with its request out counts towards poison (engine README, invariant 4).
    if (!item.suspect)
      this.#recorder.push({
        kind: 'sent',
        chunk_id: item.chunk_id,
        lease_gen: item.lease_gen,
        index: item.index,
      });
    void this.#call(item, reservation, stop).finally(() => {
      this.#controls?.costs.ended(item);
      this.#inFlight.delete(flight);
      this.#inFlightBytes -= item.body.length;
      this.#wake.wake();
    });
  }

  async #call(item: ClaimedItem, reservation: Reservation, stop: CallStop): Promise<void> {
    const { clock, options } = this.#deps;
    let res: UpstreamResponse;
    let cached = false;
    try {
      if (this.#cacheProject(item) === null)
        res = await this.scheduler.upstream.send({
          path: item.endpoint,
          body: this.#bodyOf(item),
          stop,
        });
      else ({ res, cached } = await this.#cachedSend(item, stop));
    } catch (err) {
      const reason = stop.reason as StopReason | undefined;
      if (stop.stopped && reason !== 'timeout') {
        this.scheduler.settle(reservation, NOT_SENT, this.inFlightCount);
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
    // A cached answer never reached the upstream: its reservation is given back.
    this.scheduler.settle(
      reservation,
      cached ? NOT_SENT : sendResult(res, decision),
      this.inFlightCount,
    );
    this.#apply(item, decision, { status: res.status, body: res.body, cached });
  }

  /** The project whose cache a line may use, or null when no cache applies. */
  #cacheProject(item: ClaimedItem): string | null {
    if (!this.#controls?.cache.enabled) return null;
    return this.#controls.costs.projectOf(item.batch_id);
  }

  #cachedSend(item: ClaimedItem, stop: CallStop) {
    const upstream = this.scheduler.upstream;
    return this.#controls!.cache.call(item, upstream.name, this.#cacheProject(item)!, () =>
      upstream.send({ path: item.endpoint, body: this.#bodyOf(item), stop }),
    );
  }

  /** The body as sent: OpenAI upstreams get the line's prefix as `prompt_cache_key`. */
  #bodyOf(item: ClaimedItem): string {
    const c = this.#controls;
    if (!c?.prefixOrder || !c.promptCacheKeys.has(this.scheduler.upstream.name)) return item.body;
    const key = c.prefixOrder.key(item);
    return key === null ? item.body : withPromptCacheKey(item.body, key);
  }

  #apply(
    item: ClaimedItem,
    decision: Decision,
    answer: { status: number; body: string; cached: boolean } | null = null,
  ): void {
    this.#controls?.costs.settle(item, this.scheduler.upstream.name, decision.outcome, answer);
    if (decision.cooldownMs !== null) this.stats.rateLimited++;
    if (decision.maybePaid && decision.outcome.kind === 'retry') this.stats.maybePaidRetries++;
    if (decision.outcome.kind === 'retry')
      this.#nextRetryMs = Math.min(this.#nextRetryMs, decision.outcome.not_before_ms);
    if (decision.outcome.kind === 'response' || decision.outcome.kind === 'error')
      this.#meter.record(item.batch_id, this.#deps.clock.nowMs());
    this.#recorder.push(decision.outcome);
    this.#claimed.close(item);
  }

  /** A cancelled or expired batch's line that will not run: a not-executed error line. At
   * shutdown nothing is recorded: drain releases the whole chunk. */
  #stopped(item: ClaimedItem, reason: Exclude<StopReason, 'timeout'>): void {
    if (reason !== 'shutdown') {
      this.#recorder.push({
        kind: 'stop',
        chunk_id: item.chunk_id,
        lease_gen: item.lease_gen,
        index: item.index,
        state: reason,
        record: notRunLine(
          item.batch_id,
          item.custom_id,
          reason,
          this.#deps.clock.nowMs(),
          this.#controls?.costs.stopError(item.batch_id),
        ),
      });
    }
    this.#claimed.close(item);
  }
}

/** How a reservation settles when its request never went out. */
const NOT_SENT: SendResult = {
  status: null,
  headers: null,
  usage: null,
  retryAfterMs: null,
  overloaded: false,
};

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
