/** Bounds of an adaptive concurrency limit. */
export interface AdaptiveBounds {
  /** @default 2 */
  floor: number;
  /** The upstream's configured maxConcurrency. */
  ceiling: number;
}

const DECREASE_FACTOR = 0.7;
const LATENCY_JUMP_FACTOR = 4;
const LATENCY_JUMP_MIN_MS = 250;
/** Cuts are at least this far apart: a baseline of a few ms would otherwise allow a cut per answer. */
const MIN_CUT_INTERVAL_MS = 250;
const SMOOTHING = 0.1;

/**
 * AIMD concurrency for upstreams that send no rate-limit headers (vLLM, Ollama, llama.cpp): they
 * queue, slow down or answer 503. Slow start doubles the limit each round trip until the first
 * overload; after that it grows by one per round trip while the limit is in use and cuts by 30% on
 * 503s, timeouts and latency jumps — at most once per round trip, so one burst costs one cut.
 */
export class AdaptiveConcurrency {
  readonly #bounds: AdaptiveBounds;
  #limit: number;
  #slowStart = true;
  #baselineMs: number | null = null;
  #smoothedMs: number | null = null;
  #lastCutMs = -Infinity;

  constructor(
    bounds: AdaptiveBounds,
    initial = Math.min(bounds.ceiling, Math.max(bounds.floor, 4)),
  ) {
    this.#bounds = bounds;
    this.#limit = initial;
  }

  /** Requests that may be in flight now. */
  get limit(): number {
    return Math.max(this.#bounds.floor, Math.min(this.#bounds.ceiling, Math.floor(this.#limit)));
  }

  get baselineLatencyMs(): number | null {
    return this.#baselineMs;
  }

  onSuccess(latencyMs: number, inFlight: number, nowMs: number): void {
    this.#trackBaseline(latencyMs);
    const baseline = this.#baselineMs ?? latencyMs;
    // Judged on smoothed latency: one answer delayed by a GC pause or an fsync is not a trend.
    this.#smoothedMs =
      this.#smoothedMs === null
        ? latencyMs
        : this.#smoothedMs + (latencyMs - this.#smoothedMs) * SMOOTHING;
    const smoothed = this.#smoothedMs;
    if (smoothed > baseline * LATENCY_JUMP_FACTOR && smoothed - baseline > LATENCY_JUMP_MIN_MS) {
      this.onOverload(nowMs, smoothed);
      return;
    }
    if (inFlight + 1 < this.limit) return; // not using the limit: no evidence it can grow
    this.#limit = Math.min(
      this.#bounds.ceiling,
      this.#limit + (this.#slowStart ? 1 : 1 / this.#limit),
    );
  }

  /** 503, timeout or a latency jump: cut once per round trip. */
  onOverload(nowMs: number, roundTripMs = this.#baselineMs ?? 1_000): void {
    this.#slowStart = false;
    if (nowMs - this.#lastCutMs < Math.max(roundTripMs, MIN_CUT_INTERVAL_MS)) return;
    this.#lastCutMs = nowMs;
    this.#limit = Math.max(this.#bounds.floor, this.#limit * DECREASE_FACTOR);
  }

  /** A slowly rising minimum: the latency of an unloaded upstream, forgetting stale lows. */
  #trackBaseline(latencyMs: number): void {
    if (this.#baselineMs === null || latencyMs < this.#baselineMs) this.#baselineMs = latencyMs;
    else this.#baselineMs += (latencyMs - this.#baselineMs) * 0.01;
  }
}
