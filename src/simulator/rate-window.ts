import { formatDuration } from './duration-format.ts';
import type { SimClock } from './types.ts';

/**
 * Per-model RPM/TPM limiter shaped like OpenAI's: a per-minute limit enforced in per-second slices.
 *
 * Each limit is a token bucket refilling at limit/60 per second with a burst of one second's worth
 * (at least one unit, so rpm=30 still admits a request every 2 s). A request larger than the burst is
 * admitted when the bucket is full and drives it into debt, as upstreams do, so it can never starve.
 * A second bucket of a full minute's capacity, refilling at the same rate, never refuses anything:
 * it only exists to report OpenAI-style `remaining` and `reset` figures in headers.
 */

export interface RateLimits {
  rpm?: number;
  tpm?: number;
}

export type RateKind = 'requests' | 'tokens';

export interface RateDecision {
  allowed: boolean;
  /** The limit that refused the request (the one with the longer wait), null when allowed. */
  kind: RateKind | null;
  retryAfterMs: number;
  /** Filled only when refused, for OpenAI's message: "Limit L, Used U, Requested R". */
  limit: number;
  used: number;
  requested: number;
  /** x-ratelimit-* headers describing the model's windows after this decision. */
  headers: Record<string, string>;
}

export interface RateWindow {
  admit(model: string, tokens: number): RateDecision;
  /** Headers for a model without consuming anything (for answers decided before admission). */
  headers(model: string): Record<string, string>;
  reset(): void;
}

interface Bucket {
  readonly limit: number;
  readonly perMs: number;
  readonly burst: number;
  level: number;
  minuteLevel: number;
  atMs: number;
}

interface ModelBuckets {
  requests: Bucket | null;
  tokens: Bucket | null;
}

export function createRateWindow(limits: RateLimits, clock: SimClock): RateWindow {
  const models = new Map<string, ModelBuckets>();
  const bucketsFor = (model: string): ModelBuckets => {
    let found = models.get(model);
    if (found === undefined) {
      found = { requests: newBucket(limits.rpm, clock), tokens: newBucket(limits.tpm, clock) };
      models.set(model, found);
    }
    return found;
  };
  return {
    admit: (model, tokens) => admit(bucketsFor(model), tokens, clock.nowMs()),
    headers: (model) => {
      const buckets = bucketsFor(model);
      refillAll(buckets, clock.nowMs());
      return headersOf(buckets);
    },
    reset: () => models.clear(),
  };
}

function newBucket(limit: number | undefined, clock: SimClock): Bucket | null {
  if (limit === undefined || !(limit > 0)) return null;
  const burst = Math.max(1, limit / 60);
  return {
    limit,
    perMs: limit / 60_000,
    burst,
    level: burst,
    minuteLevel: limit,
    atMs: clock.nowMs(),
  };
}

function refill(bucket: Bucket | null, nowMs: number): void {
  if (bucket === null) return;
  const gained = Math.max(0, nowMs - bucket.atMs) * bucket.perMs;
  bucket.level = Math.min(bucket.burst, bucket.level + gained);
  bucket.minuteLevel = Math.min(bucket.limit, bucket.minuteLevel + gained);
  bucket.atMs = Math.max(bucket.atMs, nowMs);
}

function refillAll(buckets: ModelBuckets, nowMs: number): void {
  refill(buckets.requests, nowMs);
  refill(buckets.tokens, nowMs);
}

/** Milliseconds until the bucket can take `cost`; 0 when it can now. */
function waitMs(bucket: Bucket | null, cost: number): number {
  if (bucket === null) return 0;
  const needed = Math.min(cost, bucket.burst);
  if (bucket.level >= needed) return 0;
  return Math.max(1, Math.ceil((needed - bucket.level) / bucket.perMs));
}

function admit(buckets: ModelBuckets, tokens: number, nowMs: number): RateDecision {
  refillAll(buckets, nowMs);
  const requestWaitMs = waitMs(buckets.requests, 1);
  const tokenWaitMs = waitMs(buckets.tokens, tokens);
  if (requestWaitMs === 0 && tokenWaitMs === 0) {
    consume(buckets.requests, 1);
    consume(buckets.tokens, tokens);
    return { ...NOT_REFUSED, headers: headersOf(buckets) };
  }
  const kind: RateKind = tokenWaitMs > requestWaitMs ? 'tokens' : 'requests';
  const bucket = kind === 'tokens' ? buckets.tokens : buckets.requests;
  const limit = bucket?.limit ?? 0;
  return {
    allowed: false,
    kind,
    retryAfterMs: Math.max(requestWaitMs, tokenWaitMs),
    limit,
    used: Math.max(0, Math.ceil(limit - (bucket?.minuteLevel ?? 0))),
    requested: kind === 'tokens' ? tokens : 1,
    headers: headersOf(buckets),
  };
}

const NOT_REFUSED = { allowed: true, kind: null, retryAfterMs: 0, limit: 0, used: 0, requested: 0 };

function consume(bucket: Bucket | null, cost: number): void {
  if (bucket === null) return;
  bucket.level -= cost;
  bucket.minuteLevel -= cost;
}

function headersOf(buckets: ModelBuckets): Record<string, string> {
  const headers: Record<string, string> = {};
  describe(headers, 'requests', buckets.requests);
  describe(headers, 'tokens', buckets.tokens);
  return headers;
}

function describe(headers: Record<string, string>, kind: RateKind, bucket: Bucket | null): void {
  if (bucket === null) return;
  headers[`x-ratelimit-limit-${kind}`] = String(bucket.limit);
  headers[`x-ratelimit-remaining-${kind}`] = String(Math.max(0, Math.floor(bucket.minuteLevel)));
  headers[`x-ratelimit-reset-${kind}`] = formatDuration(
    (bucket.limit - bucket.minuteLevel) / bucket.perMs,
  );
}
