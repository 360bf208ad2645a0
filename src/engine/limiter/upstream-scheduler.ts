import type { SchedulingSettings } from '../../domain/scheduling-settings.ts';
import type { Clock } from '../../lib/clock.ts';
import { tokenizerFor } from '../../protocol/model-tokenizer.ts';
import { countRequestTokens } from '../../protocol/request-tokens.ts';
import type { Upstream } from '../../providers/provider.ts';
import { AdaptiveConcurrency } from './adaptive-concurrency.ts';
import { RateLimiter, type LimiterKeySnapshot } from './rate-limiter.ts';
import { readRateLimitHeaders } from './rate-limit-headers.ts';

/** Share of each rate limit used: 1% under the limit absorbs arrival jitter (benchmark 2). */
export const LIMIT_HEADROOM = 0.99;
/**
 * Characters of one request counted exactly by the tokenizer; the rest is extrapolated. The
 * worst text (random CJK, no repeats) costs the tokenizer ~4 ms per 1,000 characters, so a
 * request's estimate stays within a few milliseconds of event-loop time whatever its size.
 */
export const EXACT_TOKEN_CHARS = 1_024;

/**
 * A line body longer than this is not parsed to be counted (parsing a megabyte stalls the loop
 * for tens of ms on a busy machine): its text is sampled as it is, JSON syntax included (a slight
 * overestimate), and its output bound read from the raw text.
 */
const PARSE_BODY_CHARS = 64 * 1024;
const OUTPUT_BOUND = /"(max_completion_tokens|max_tokens|max_output_tokens)"\s*:\s*(\d+)/;
const CHOICES = /"n"\s*:\s*(\d+)/;

interface TokenEstimate {
  input: number;
  maxOutput: number;
}

/** What a send reserved, so its answer can settle it. */
export interface Reservation {
  key: string;
  /** The tokenizer's prompt estimate before scaling. */
  rawPrompt: number;
  prompt: number;
  total: number;
  startedMs: number;
}

/** How a send ended, for the limiter and the adaptive limit. */
export interface SendResult {
  status: number | null;
  headers: Record<string, string | string[] | undefined> | null;
  usage: { prompt: number; total: number } | null;
  retryAfterMs: number | null;
  /** 503, timeout, or a connection failure under load. */
  overloaded: boolean;
}

/** The scheduler's view of one upstream, for the admin endpoint and logs. */
export interface UpstreamSchedulerSnapshot {
  upstream: string;
  concurrencyLimit: number;
  adaptive: boolean;
  baselineLatencyMs: number | null;
  realtimeWaiting: number;
  /** Models with limiter state now; `keys` lists the most recently used of them. */
  keyCount: number;
  keys: LimiterKeySnapshot[];
}

/**
 * Admission control for one upstream: request/token buckets per model (configured or learned),
 * a shared cooldown after 429s, and an AIMD concurrency limit for upstreams without headers.
 * Real-time passthrough requests register here and go ahead of batch traffic.
 */
export class UpstreamScheduler {
  readonly upstream: Upstream;
  readonly #settings: SchedulingSettings;
  readonly #clock: Clock;
  readonly #limiter: RateLimiter;
  readonly #adaptive: AdaptiveConcurrency;
  #adaptiveOn: boolean;
  #realtimeWaiting = 0;
  /** 429 cooldowns seen here and not yet told to the other processes: key → retry-after ms. */
  readonly #cooldownsToShare = new Map<string, number>();
  /** Estimates by request: a line waiting for tokens is tried on every admission loop. */
  readonly #estimates = new WeakMap<object, TokenEstimate>();

  constructor(upstream: Upstream, settings: SchedulingSettings, clock: Clock) {
    this.upstream = upstream;
    this.#settings = settings;
    this.#clock = clock;
    this.#limiter = new RateLimiter({ rpm: settings.rpm, tpm: settings.tpm }, LIMIT_HEADROOM);
    this.#adaptive = new AdaptiveConcurrency({
      floor: Math.min(settings.minConcurrency, upstream.maxConcurrency),
      ceiling: upstream.maxConcurrency,
    });
    this.#adaptiveOn = settings.adaptive !== 'off';
  }

  /** In-flight requests allowed now. */
  get concurrencyLimit(): number {
    return this.#adaptiveOn ? this.#adaptive.limit : this.upstream.maxConcurrency;
  }

  get realtimeWaiting(): number {
    return this.#realtimeWaiting;
  }

  /**
   * Reserves capacity for `body` now, or says how long to wait. `memo` (the line's object, or the
   * body when it is one) keeps the token estimate, so retrying admission never counts again.
   */
  tryAdmit(
    model: string,
    body: string | Record<string, unknown>,
    memo: object | null = typeof body === 'string' ? null : body,
  ): Reservation | { waitMs: number } {
    const now = this.#clock.nowMs();
    const key = model;
    let rawPrompt = 0;
    let prompt = 0;
    let total = 0;
    if (this.#limiter.countsTokens(key)) {
      const estimate = this.#estimate(model, body, memo);
      rawPrompt = estimate.input;
      prompt = this.#limiter.scalePrompt(key, rawPrompt);
      total = prompt + estimate.maxOutput;
    }
    const waitMs = this.#limiter.waitMs(key, total, now);
    if (waitMs > 0) return { waitMs };
    this.#limiter.take(key, total, now);
    return { key, rawPrompt, prompt, total, startedMs: now };
  }

  #estimate(model: string, body: string | Record<string, unknown>, memo: object | null) {
    const known = memo ? this.#estimates.get(memo) : undefined;
    if (known) return known;
    if (typeof body === 'string' && body.length > PARSE_BODY_CHARS) {
      const estimate = this.#estimateRaw(model, body);
      if (memo) this.#estimates.set(memo, estimate);
      return estimate;
    }
    const parsed = typeof body === 'string' ? (JSON.parse(body) as Record<string, unknown>) : body;
    const { input, maxOutput } = countRequestTokens(parsed, tokenizerFor(model), {
      defaultMaxTokens: this.#settings.defaultMaxTokens,
      exactChars: EXACT_TOKEN_CHARS,
    });
    const estimate = { input, maxOutput };
    if (memo) this.#estimates.set(memo, estimate);
    return estimate;
  }

  /** A large body's estimate from its text (see PARSE_BODY_CHARS). */
  #estimateRaw(model: string, body: string): TokenEstimate {
    const input = tokenizerFor(model).sampling(EXACT_TOKEN_CHARS).count(body);
    const n = Math.max(1, Number(CHOICES.exec(body)?.[1] ?? 1));
    const bound = OUTPUT_BOUND.exec(body)?.[2];
    return { input, maxOutput: (bound ? Number(bound) : this.#settings.defaultMaxTokens) * n };
  }

  /** Settles a reservation with the answer: refunds/charges, learns limits, adapts concurrency. */
  settle(r: Reservation, result: SendResult, inFlight: number): void {
    const now = this.#clock.nowMs();
    const headers = result.headers ? readRateLimitHeaders(result.headers) : null;
    // An upstream that states its limits is governed by them, not by guessing from latency.
    if (headers && this.#settings.adaptive === 'auto') this.#adaptiveOn = false;
    const chargeUsage = this.#settings.tokenAccounting === 'usage';
    this.#limiter.settle(r.key, r, result.usage, headers, now, chargeUsage);
    if (result.status === 429) {
      const retryAfterMs = result.retryAfterMs ?? 1_000;
      this.#limiter.onRateLimited(r.key, retryAfterMs, now);
      this.#cooldownsToShare.set(
        r.key,
        Math.max(retryAfterMs, this.#cooldownsToShare.get(r.key) ?? 0),
      );
    }
    if (result.overloaded) this.#adaptive.onOverload(now);
    else if (result.status !== null && result.status < 500)
      this.#adaptive.onSuccess(now - r.startedMs, inFlight, now);
  }

  /** Requests per second this process may send now (its fastest recent model), null if unlimited. */
  requestsPerSecond(): number | null {
    return this.#limiter.requestsPerSecond(this.#clock.nowMs() - 10_000);
  }

  /** Models this process sent on since `sinceMs` (ClusterLimits reports them). */
  modelsUsedSince(sinceMs: number): string[] {
    return this.#limiter.keysUsedSince(sinceMs);
  }

  /** The 429 cooldowns seen since the last call, for the other processes to respect. */
  takeCooldowns(): Map<string, number> {
    const taken = new Map(this.#cooldownsToShare);
    this.#cooldownsToShare.clear();
    return taken;
  }

  /**
   * What the cluster says: this process's share per model (see RateLimiter.setShares), and the
   * cooldowns others saw.
   */
  applyCluster(
    shares: { defaultShare: number; byModel: ReadonlyMap<string, number>; joinHoldMs: number },
    cooldownMs: ReadonlyMap<string, number>,
  ): void {
    const now = this.#clock.nowMs();
    this.#limiter.setShares(shares.defaultShare, shares.byModel, shares.joinHoldMs);
    for (const [model, ms] of cooldownMs) this.#limiter.onRateLimited(model, ms, now);
  }

  /** Marks a real-time request as waiting, so batch dispatch holds back; returns the release. */
  enterRealtime(): () => void {
    this.#realtimeWaiting++;
    let left = false;
    return () => {
      if (!left) this.#realtimeWaiting--;
      left = true;
    };
  }

  snapshot(): UpstreamSchedulerSnapshot {
    const keys = this.#limiter.snapshot(this.#clock.nowMs());
    return {
      upstream: this.upstream.name,
      concurrencyLimit: this.concurrencyLimit,
      adaptive: this.#adaptiveOn,
      baselineLatencyMs: this.#adaptive.baselineLatencyMs,
      realtimeWaiting: this.#realtimeWaiting,
      keyCount: this.#limiter.keyCount,
      keys,
    };
  }
}
