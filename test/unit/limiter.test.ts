import { describe, expect, it } from 'vitest';
import { AdaptiveConcurrency } from '../../src/engine/limiter/adaptive-concurrency.ts';
import { GcraBucket } from '../../src/engine/limiter/gcra-bucket.ts';
import { parseResetMs, readRateLimitHeaders } from '../../src/engine/limiter/rate-limit-headers.ts';
import {
  IDLE_KEY_MS,
  MAX_LIMITER_KEYS,
  RateLimiter,
} from '../../src/engine/limiter/rate-limiter.ts';

describe('GcraBucket', () => {
  it('holds one second of a per-minute limit and refills at limit/60 per second', () => {
    const b = new GcraBucket(600); // 10 per second
    expect(b.capacity).toBe(10);
    for (let i = 0; i < 10; i++) {
      expect(b.waitMs(1, 0)).toBe(0);
      b.take(1, 0);
    }
    expect(b.waitMs(1, 0)).toBe(100);
    expect(b.waitMs(1, 100)).toBe(0);
    expect(b.available(1_000)).toBe(10);
  });

  it('lets a request larger than the bucket through once full, then repays the debt (no deadlock)', () => {
    const b = new GcraBucket(60_000); // 1,000 per second
    expect(b.waitMs(5_000, 0)).toBe(0);
    b.take(5_000, 0);
    expect(b.waitMs(1, 0)).toBe(4_001);
    expect(b.waitMs(5_000, 3_000)).toBe(2_000);
    expect(b.waitMs(5_000, 5_000)).toBe(0);
  });

  it('refunds and charges the difference once the real cost is known', () => {
    const b = new GcraBucket(60_000);
    b.take(1_000, 0);
    expect(b.available(0)).toBe(0);
    b.adjust(-400, 0);
    expect(b.available(0)).toBe(400);
    b.adjust(+200, 0);
    expect(b.available(0)).toBe(200);
  });

  it('clamps what it offers to what the upstream says remains, and blocks until a retry-after', () => {
    const b = new GcraBucket(60_000);
    b.clampAvailable(250, 0);
    expect(b.available(0)).toBe(250);
    b.clampAvailable(900, 0); // never loosens
    expect(b.available(0)).toBe(250);
    b.blockUntil(2_000);
    expect(b.waitMs(1, 0)).toBe(2_001);
  });
});

describe('rate-limit headers', () => {
  it('parses OpenAI durations', () => {
    expect(parseResetMs('1s')).toBe(1_000);
    expect(parseResetMs('6m0s')).toBe(360_000);
    expect(parseResetMs('120ms')).toBe(120);
    expect(parseResetMs('1m30.5s')).toBe(90_500);
    expect(parseResetMs('2')).toBe(2_000);
    expect(parseResetMs('soon')).toBeUndefined();
  });

  it('reads the six headers and returns null when none is present', () => {
    expect(readRateLimitHeaders({ 'content-type': 'application/json' })).toBeNull();
    expect(
      readRateLimitHeaders({
        'x-ratelimit-limit-requests': '3000',
        'x-ratelimit-remaining-tokens': '399000',
        'x-ratelimit-reset-tokens': '150ms',
      }),
    ).toEqual({
      limitRequests: 3000,
      remainingTokens: 399000,
      resetTokensMs: 150,
    });
  });
});

describe('RateLimiter', () => {
  it('admits nothing beyond configured limits and counts tokens only when a token limit exists', () => {
    const none = new RateLimiter({});
    expect(none.countsTokens('m')).toBe(false);
    expect(none.waitMs('m', 1e9, 0)).toBe(0);
    const limited = new RateLimiter({ rpm: 6_000, tpm: 60_000 });
    expect(limited.countsTokens('m')).toBe(true);
    limited.take('m', 500, 0);
    expect(limited.waitMs('m', 600, 0)).toBe(100); // tokens bind: 100 over a 1,000/s bucket
    expect(limited.waitMs('m', 1, 0)).toBe(0);
    const byRequests = new RateLimiter({ rpm: 60 });
    byRequests.take('m', 0, 0);
    expect(byRequests.waitMs('m', 0, 0)).toBe(1_000); // requests bind: 1 per second
  });

  it('learns limits from headers when none are configured, and configuration wins otherwise', () => {
    const learned = new RateLimiter({});
    learned.settle(
      'm',
      { rawPrompt: 0, prompt: 0, total: 0 },
      null,
      { limitRequests: 120, limitTokens: 6_000 },
      0,
      false,
    );
    expect(learned.snapshot(0)[0]).toMatchObject({
      rpm: 120,
      tpm: 6_000,
      source: 'headers',
      availableRequests: 2,
      availableTokens: 100,
    });
    const configured = new RateLimiter({ rpm: 60 });
    configured.settle(
      'm',
      { rawPrompt: 0, prompt: 0, total: 0 },
      null,
      { limitRequests: 6_000 },
      0,
      false,
    );
    expect(configured.snapshot(0)[0]).toMatchObject({ rpm: 60, source: 'config' });
  });

  it('pauses the whole key after a 429 without touching other keys', () => {
    const l = new RateLimiter({});
    l.onRateLimited('a', 1_500, 0);
    expect(l.waitMs('a', 0, 0)).toBe(1_500);
    expect(l.waitMs('a', 0, 1_500)).toBe(0);
    expect(l.waitMs('b', 0, 0)).toBe(0);
  });

  it('settles the prompt estimate to the real count and learns the ratio; usage accounting refunds output too', () => {
    const l = new RateLimiter({ tpm: 600_000 }); // 10,000 tokens per second
    l.take('m', 1_100, 0); // 100 prompt + 1,000 max output
    l.settle(
      'm',
      { rawPrompt: 100, prompt: 100, total: 1_100 },
      { prompt: 150, total: 300 },
      null,
      0,
      false,
    );
    expect(l.snapshot(0)[0]!.availableTokens).toBe(10_000 - 1_150);
    expect(l.snapshot(0)[0]!.promptEstimateRatio).toBeCloseTo(1.5, 5); // first sample: running mean
    expect(l.scalePrompt('m', 100)).toBe(150);
    const u = new RateLimiter({ tpm: 600_000 });
    u.take('m', 1_100, 0);
    u.settle(
      'm',
      { rawPrompt: 100, prompt: 100, total: 1_100 },
      { prompt: 100, total: 300 },
      null,
      0,
      true,
    );
    expect(u.snapshot(0)[0]!.availableTokens).toBe(10_000 - 300);
  });
});

describe('AdaptiveConcurrency (AIMD)', () => {
  it('doubles per round trip in slow start while the limit is in use, and does not grow when idle', () => {
    const a = new AdaptiveConcurrency({ floor: 2, ceiling: 64 }, 4);
    // One round trip of a full pipeline: every one of the 4 answers arrives with the limit in use.
    for (let i = 0; i < 4; i++) a.onSuccess(100, a.limit - 1, i);
    expect(a.limit).toBe(8);
    a.onSuccess(100, 1, 10); // far below the limit: no evidence
    expect(a.limit).toBe(8);
  });

  it('cuts by 30% on overload at most once per round trip, then grows by one per round trip', () => {
    const a = new AdaptiveConcurrency({ floor: 2, ceiling: 64 }, 40);
    a.onSuccess(100, 39, 0);
    a.onOverload(1_000);
    expect(a.limit).toBe(28);
    a.onOverload(1_050); // same round trip
    expect(a.limit).toBe(28);
    const before = a.limit;
    for (let i = 0; i < 29; i++) a.onSuccess(100, 40, 2_000 + i);
    expect(a.limit).toBe(before + 1);
  });

  it('treats a latency jump as overload and never leaves its bounds', () => {
    const a = new AdaptiveConcurrency({ floor: 2, ceiling: 10 }, 10);
    a.onSuccess(100, 9, 0);
    a.onSuccess(2_000, 9, 1_000); // one slow answer is not a trend
    expect(a.limit).toBe(10);
    for (let i = 0; i < 5; i++) a.onSuccess(2_000, 9, 1_100 + i * 10); // a sustained jump: one cut
    expect(a.limit).toBe(7);
    for (let i = 0; i < 20; i++) a.onOverload(10_000 * (i + 2));
    expect(a.limit).toBe(2);
  });
});

describe('RateLimiter key bounds', () => {
  it('holds at most MAX_LIMITER_KEYS keys and forgets idle ones', () => {
    const limiter = new RateLimiter({ rpm: 600 });
    for (let i = 0; i < 3 * MAX_LIMITER_KEYS; i++) limiter.take(`m${i}`, 0, i);
    expect(limiter.keyCount).toBeLessThanOrEqual(MAX_LIMITER_KEYS);
    // The newest key survived; a listing names at most 20, newest first.
    const listed = limiter.snapshot(3 * MAX_LIMITER_KEYS);
    expect(listed.length).toBe(20);
    expect(listed[0]!.key).toBe(`m${3 * MAX_LIMITER_KEYS - 1}`);
    limiter.snapshot(3 * MAX_LIMITER_KEYS + IDLE_KEY_MS);
    expect(limiter.keyCount).toBe(0);
  });

  it('keeps an idle key while its cooldown runs', () => {
    const limiter = new RateLimiter({});
    limiter.onRateLimited('m', 2 * IDLE_KEY_MS, 0);
    expect(limiter.snapshot(IDLE_KEY_MS).map((k) => k.key)).toEqual(['m']);
  });
});
