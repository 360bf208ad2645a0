/**
 * A GCRA bucket: a per-minute limit enforced with about one second of burst, as OpenAI enforces
 * per-minute limits in per-second slices. State is one number, the theoretical arrival time
 * (`tatMs`): the bucket is full when `tatMs <= now`, and `tatMs - now` is its debt in time.
 */
export class GcraBucket {
  #limitPerMinute: number;
  #tatMs = 0;
  readonly #fullBurstMs: number;
  #burstMs: number;
  readonly #headroom: number;
  /** This process's part of the limit when several processes share it (1: all of it). */
  #share = 1;

  /**
   * `headroom` < 1 runs the bucket slightly under the limit: requests reach the upstream with a
   * few ms of jitter, and a bucket run exactly at the limit turns that jitter into 429s.
   */
  constructor(limitPerMinute: number, burstMs = 1_000, headroom = 1) {
    this.#limitPerMinute = limitPerMinute;
    this.#fullBurstMs = burstMs;
    this.#burstMs = burstMs;
    this.#headroom = headroom;
  }

  get limitPerMinute(): number {
    return this.#limitPerMinute;
  }

  /** Time one unit takes to drain. */
  get #intervalMs(): number {
    return 60_000 / (this.#limitPerMinute * this.#headroom * this.#share);
  }

  /** Units per second it lets through (headroom and share applied). */
  get ratePerSecond(): number {
    return 1_000 / this.#intervalMs;
  }

  /** Units the bucket holds when full (one burst). */
  get capacity(): number {
    return this.#burstMs / this.#intervalMs;
  }

  /** Units available now. */
  available(nowMs: number): number {
    return Math.max(0, (this.#burstMs - Math.max(0, this.#tatMs - nowMs)) / this.#intervalMs);
  }

  /**
   * Milliseconds until `cost` fits (0: now). A cost larger than the whole bucket fits once the
   * bucket is full and then runs it into debt (borrow and repay), so it can never deadlock.
   */
  waitMs(cost: number, nowMs: number): number {
    const tat = Math.max(this.#tatMs, nowMs);
    if (cost * this.#intervalMs > this.#burstMs) return Math.max(0, tat - nowMs);
    return Math.max(0, tat + cost * this.#intervalMs - this.#burstMs - nowMs);
  }

  take(cost: number, nowMs: number): void {
    this.#tatMs = Math.max(this.#tatMs, nowMs) + cost * this.#intervalMs;
  }

  /** Gives back (negative) or charges more (positive) once the real cost is known. */
  adjust(delta: number, nowMs: number): void {
    this.#tatMs = Math.max(nowMs - this.#burstMs, this.#tatMs + delta * this.#intervalMs);
  }

  /** Never lets the bucket hold more than `remaining` units: the upstream's view wins when lower. */
  clampAvailable(remaining: number, nowMs: number): void {
    if (this.available(nowMs) > remaining)
      this.#tatMs = nowMs + this.#burstMs - remaining * this.#intervalMs;
  }

  /** Treats the bucket as empty until `untilMs` (a 429's retry-after). */
  blockUntil(untilMs: number): void {
    this.#tatMs = Math.max(this.#tatMs, untilMs + this.#burstMs);
  }

  setLimit(limitPerMinute: number): void {
    this.#limitPerMinute = limitPerMinute;
  }

  /**
   * Runs the bucket at `share` (0..1] of its limit, burst included. The debt already taken is
   * kept in time, so a smaller share slows what follows without refunding what went out.
   * A shared bucket also keeps only half its burst: the processes' bursts line up (at the start,
   * after a cooldown), and requests sent before the limit was learned used the upstream's.
   */
  setShare(share: number): void {
    this.#share = Math.min(1, Math.max(0.01, share));
    this.#burstMs = this.#share < 1 ? this.#fullBurstMs / 2 : this.#fullBurstMs;
  }
}
