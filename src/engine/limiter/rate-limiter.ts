import { GcraBucket } from './gcra-bucket.ts';
import type { RateLimitHeaders } from './rate-limit-headers.ts';

/** Limits given in configuration for one upstream (per model). */
export interface ConfiguredLimits {
  rpm?: number | undefined;
  tpm?: number | undefined;
}

/** One (upstream, model) key's limiter state, as the admin endpoint shows it. */
export interface LimiterKeySnapshot {
  key: string;
  rpm: number | null;
  tpm: number | null;
  source: 'config' | 'headers' | 'none';
  availableRequests: number | null;
  availableTokens: number | null;
  cooldownMs: number;
  promptEstimateRatio: number;
}

/** Bounds of the learned prompt ratio: a tokenizer is never off by more than this. */
const MIN_RATIO = 0.25;
const MAX_RATIO = 4;
const RATIO_EWMA = 0.05;

class KeyState {
  requests: GcraBucket | null = null;
  tokens: GcraBucket | null = null;
  source: LimiterKeySnapshot['source'] = 'none';
  cooldownUntilMs = 0;
  /** EWMA of real prompt tokens / estimated prompt tokens, so estimates converge to the upstream's count. */
  promptRatio = 1;
  ratioSamples = 0;
}

/**
 * Request and token buckets per (upstream, model), from configuration or learned from the
 * upstream's `x-ratelimit-*` headers, with one shared cooldown per key after a 429.
 */
export class RateLimiter {
  readonly #keys = new Map<string, KeyState>();
  readonly #configured: ConfiguredLimits;
  readonly #headroom: number;

  /** `headroom`: share of each limit actually used (see GcraBucket). @default 1 */
  constructor(configured: ConfiguredLimits, headroom = 1) {
    this.#configured = configured;
    this.#headroom = headroom;
  }

  #bucket(limitPerMinute: number): GcraBucket {
    return new GcraBucket(limitPerMinute, 1_000, this.#headroom);
  }

  /** True when a token bucket exists, i.e. token estimates are worth computing. */
  countsTokens(key: string): boolean {
    return this.#state(key).tokens !== null;
  }

  /** The prompt estimate scaled by what this key's upstream has been counting. */
  scalePrompt(key: string, promptTokens: number): number {
    return Math.ceil(promptTokens * this.#state(key).promptRatio);
  }

  /** Milliseconds until a request of `tokens` may be sent on `key` (0: now). */
  waitMs(key: string, tokens: number, nowMs: number): number {
    const s = this.#state(key);
    return Math.max(
      s.cooldownUntilMs - nowMs,
      s.requests?.waitMs(1, nowMs) ?? 0,
      s.tokens?.waitMs(tokens, nowMs) ?? 0,
      0,
    );
  }

  take(key: string, tokens: number, nowMs: number): void {
    const s = this.#state(key);
    s.requests?.take(1, nowMs);
    s.tokens?.take(tokens, nowMs);
  }

  /**
   * Corrects the reservation with the real prompt count and learns limits from the headers.
   * `reserved.rawPrompt` is the unscaled tokenizer estimate: the ratio learns from it, never from
   * a figure scaled by an older ratio (that feedback diverges with many requests in flight).
   */
  settle(
    key: string,
    reserved: { rawPrompt: number; prompt: number; total: number },
    actual: { prompt: number; total: number } | null,
    headers: RateLimitHeaders | null,
    nowMs: number,
    chargeUsage: boolean,
  ): void {
    const s = this.#state(key);
    if (actual && reserved.rawPrompt > 0 && actual.prompt > 0) {
      const sample = Math.min(MAX_RATIO, Math.max(MIN_RATIO, actual.prompt / reserved.rawPrompt));
      // A running mean over the first samples (fast to converge), then a slow EWMA.
      s.ratioSamples++;
      s.promptRatio += (sample - s.promptRatio) * Math.max(RATIO_EWMA, 1 / s.ratioSamples);
      const delta = chargeUsage ? actual.total - reserved.total : actual.prompt - reserved.prompt;
      s.tokens?.adjust(delta, nowMs);
    }
    if (headers) this.#learn(s, headers, nowMs);
  }

  /** A 429: the whole key waits until its retry-after, for every sender. */
  onRateLimited(key: string, retryAfterMs: number, nowMs: number): void {
    const s = this.#state(key);
    s.cooldownUntilMs = Math.max(s.cooldownUntilMs, nowMs + retryAfterMs);
  }

  snapshot(nowMs: number): LimiterKeySnapshot[] {
    return [...this.#keys].map(([key, s]) => ({
      key,
      rpm: s.requests?.limitPerMinute ?? null,
      tpm: s.tokens?.limitPerMinute ?? null,
      source: s.source,
      availableRequests: s.requests ? Math.floor(s.requests.available(nowMs)) : null,
      availableTokens: s.tokens ? Math.floor(s.tokens.available(nowMs)) : null,
      cooldownMs: Math.max(0, s.cooldownUntilMs - nowMs),
      promptEstimateRatio: Math.round(s.promptRatio * 1000) / 1000,
    }));
  }

  #state(key: string): KeyState {
    let s = this.#keys.get(key);
    if (!s) {
      s = new KeyState();
      if (this.#configured.rpm) s.requests = this.#bucket(this.#configured.rpm);
      if (this.#configured.tpm) s.tokens = this.#bucket(this.#configured.tpm);
      if (s.requests || s.tokens) s.source = 'config';
      this.#keys.set(key, s);
    }
    return s;
  }

  /** Configuration wins for limits; headers fill the gaps and clamp what is available now. */
  #learn(s: KeyState, h: RateLimitHeaders, nowMs: number): void {
    if (h.limitRequests && !this.#configured.rpm) {
      if (s.requests) s.requests.setLimit(h.limitRequests);
      else s.requests = this.#bucket(h.limitRequests);
      s.source = s.source === 'config' ? 'config' : 'headers';
    }
    if (h.limitTokens && !this.#configured.tpm) {
      if (s.tokens) s.tokens.setLimit(h.limitTokens);
      else s.tokens = this.#bucket(h.limitTokens);
      s.source = s.source === 'config' ? 'config' : 'headers';
    }
    if (h.remainingRequests !== undefined) s.requests?.clampAvailable(h.remainingRequests, nowMs);
    if (h.remainingTokens !== undefined) s.tokens?.clampAvailable(h.remainingTokens, nowMs);
  }
}
