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
  /** This process's part of the limits (1 alone; 1/3 as one of three processes using the key). */
  share: number;
  availableRequests: number | null;
  availableTokens: number | null;
  cooldownMs: number;
  promptEstimateRatio: number;
}

/** Bounds of the learned prompt ratio: a tokenizer is never off by more than this. */
const MIN_RATIO = 0.25;
const MAX_RATIO = 4;
const RATIO_EWMA = 0.05;
/**
 * Keys are model names, which clients choose: state is kept for at most this many, and a key
 * idle this long (its buckets refilled, no cooldown left) is forgotten, so a stream of made-up
 * names cannot grow the heap.
 */
export const MAX_LIMITER_KEYS = 1_024;
export const IDLE_KEY_MS = 10 * 60_000;

class KeyState {
  requests: GcraBucket | null = null;
  tokens: GcraBucket | null = null;
  source: LimiterKeySnapshot['source'] = 'none';
  cooldownUntilMs = 0;
  /** EWMA of real prompt tokens / estimated prompt tokens, so estimates converge to the upstream's count. */
  promptRatio = 1;
  ratioSamples = 0;
  lastUsedMs = 0;
  /** This process's part of the key's limits in a cluster (see ClusterLimits). */
  share = 1;
}

/**
 * Request and token buckets per (upstream, model), from configuration or learned from the
 * upstream's `x-ratelimit-*` headers, with one shared cooldown per key after a 429.
 */
export class RateLimiter {
  readonly #keys = new Map<string, KeyState>();
  readonly #configured: ConfiguredLimits;
  readonly #headroom: number;
  /** The latest time any call was given: keys are aged against it. */
  #nowMs = 0;
  #defaultShare = 1;
  #clusterShares: ReadonlyMap<string, number> = new Map();
  #joinHoldMs = 0;

  /** `headroom`: share of each limit actually used (see GcraBucket). @default 1 */
  constructor(configured: ConfiguredLimits, headroom = 1) {
    this.#configured = configured;
    this.#headroom = headroom;
  }

  #bucket(limitPerMinute: number, share: number): GcraBucket {
    const bucket = new GcraBucket(limitPerMinute, 1_000, this.#headroom);
    bucket.setShare(share);
    return bucket;
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
    const s = this.#state(key, nowMs);
    return Math.max(
      s.cooldownUntilMs - nowMs,
      s.requests?.waitMs(1, nowMs) ?? 0,
      s.tokens?.waitMs(tokens, nowMs) ?? 0,
      0,
    );
  }

  take(key: string, tokens: number, nowMs: number): void {
    const s = this.#state(key, nowMs);
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
    const s = this.#state(key, nowMs);
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

  /**
   * Sets this process's part of each key's limits (from ClusterLimits). Keys not in `shares` get
   * `defaultShare`. A key made later that is in `shares` is one other processes already send on:
   * it waits `joinHoldMs` before its first send, so they learn that this one sends on it too (and
   * slow down) before it does.
   */
  setShares(defaultShare: number, shares: ReadonlyMap<string, number>, joinHoldMs: number): void {
    this.#defaultShare = defaultShare;
    this.#clusterShares = shares;
    this.#joinHoldMs = joinHoldMs;
    for (const [key, s] of this.#keys) {
      const share = shares.get(key) ?? defaultShare;
      if (s.share === share) continue;
      s.share = share;
      s.requests?.setShare(share);
      s.tokens?.setShare(share);
    }
  }

  /**
   * The highest request rate (per second, share and headroom applied) of the keys used since
   * `sinceMs`; null when one of them has no request limit (nothing to pace claims by).
   */
  requestsPerSecond(sinceMs: number): number | null {
    let fastest = 0;
    for (const s of this.#keys.values()) {
      if (s.lastUsedMs < sinceMs) continue;
      if (!s.requests) return null;
      fastest = Math.max(fastest, s.requests.ratePerSecond);
    }
    return fastest > 0 ? fastest : null;
  }

  /** Keys used since `sinceMs`: what this process tells the cluster it is sending on. */
  keysUsedSince(sinceMs: number): string[] {
    return [...this.#keys].filter(([, s]) => s.lastUsedMs >= sinceMs).map(([key]) => key);
  }

  /** A 429: the whole key waits until its retry-after, for every sender. */
  onRateLimited(key: string, retryAfterMs: number, nowMs: number): void {
    const s = this.#state(key, nowMs);
    s.cooldownUntilMs = Math.max(s.cooldownUntilMs, nowMs + retryAfterMs);
  }

  /** Keys held now (at most MAX_LIMITER_KEYS). */
  get keyCount(): number {
    return this.#keys.size;
  }

  /** The `maxKeys` most recently used keys, newest first (idle keys are forgotten first). */
  snapshot(nowMs: number, maxKeys = 20): LimiterKeySnapshot[] {
    this.#prune(nowMs, MAX_LIMITER_KEYS);
    const recent = [...this.#keys]
      .sort(([, a], [, b]) => b.lastUsedMs - a.lastUsedMs)
      .slice(0, maxKeys);
    return recent.map(([key, s]) => ({
      key,
      rpm: s.requests?.limitPerMinute ?? null,
      tpm: s.tokens?.limitPerMinute ?? null,
      source: s.source,
      share: Math.round(s.share * 1000) / 1000,
      availableRequests: s.requests ? Math.floor(s.requests.available(nowMs)) : null,
      availableTokens: s.tokens ? Math.floor(s.tokens.available(nowMs)) : null,
      cooldownMs: Math.max(0, s.cooldownUntilMs - nowMs),
      promptEstimateRatio: Math.round(s.promptRatio * 1000) / 1000,
    }));
  }

  #state(key: string, nowMs = this.#nowMs): KeyState {
    this.#nowMs = Math.max(this.#nowMs, nowMs);
    let s = this.#keys.get(key);
    if (!s) {
      if (this.#keys.size >= MAX_LIMITER_KEYS) this.#prune(this.#nowMs, MAX_LIMITER_KEYS - 1);
      s = new KeyState();
      const joining = this.#clusterShares.get(key);
      s.share = joining ?? this.#defaultShare;
      if (joining !== undefined) s.cooldownUntilMs = this.#nowMs + this.#joinHoldMs;
      if (this.#configured.rpm) s.requests = this.#bucket(this.#configured.rpm, s.share);
      if (this.#configured.tpm) s.tokens = this.#bucket(this.#configured.tpm, s.share);
      if (s.requests || s.tokens) s.source = 'config';
      this.#keys.set(key, s);
    }
    s.lastUsedMs = this.#nowMs;
    return s;
  }

  /**
   * Forgets keys idle for IDLE_KEY_MS with no cooldown left; then, while more than `keep` remain,
   * the least recently used (their buckets start full again, as after a restart).
   */
  #prune(nowMs: number, keep: number): void {
    for (const [key, s] of this.#keys) {
      if (nowMs - s.lastUsedMs >= IDLE_KEY_MS && s.cooldownUntilMs <= nowMs) this.#keys.delete(key);
    }
    if (this.#keys.size <= keep) return;
    const oldest = [...this.#keys].sort(([, a], [, b]) => a.lastUsedMs - b.lastUsedMs);
    const drop = this.#keys.size - Math.floor(keep * 0.75);
    for (const [key] of oldest.slice(0, drop)) this.#keys.delete(key);
  }

  /** Configuration wins for limits; headers fill the gaps and clamp what is available now. */
  #learn(s: KeyState, h: RateLimitHeaders, nowMs: number): void {
    if (h.limitRequests && !this.#configured.rpm) {
      if (s.requests) s.requests.setLimit(h.limitRequests);
      else s.requests = this.#bucket(h.limitRequests, s.share);
      s.source = s.source === 'config' ? 'config' : 'headers';
    }
    if (h.limitTokens && !this.#configured.tpm) {
      if (s.tokens) s.tokens.setLimit(h.limitTokens);
      else s.tokens = this.#bucket(h.limitTokens, s.share);
      s.source = s.source === 'config' ? 'config' : 'headers';
    }
    if (h.remainingRequests !== undefined) s.requests?.clampAvailable(h.remainingRequests, nowMs);
    if (h.remainingTokens !== undefined) s.tokens?.clampAvailable(h.remainingTokens, nowMs);
  }
}
