import { describe, expect, it } from 'vitest';
import {
  DEFAULT_RETRY_POLICY,
  nextDelayMs,
  validateRetryPolicy,
  type RetryPolicy,
} from '../../src/engine/retry-policy.ts';

const policy: RetryPolicy = {
  initialIntervalMs: 1_000,
  backoffCoefficient: 2,
  maximumIntervalMs: 60_000,
  maximumAttempts: 5,
  maximumRetryAfterMs: 600_000,
};
const noJitter = (): number => 0;
const fullJitter = (): number => 1;

describe('nextDelayMs', () => {
  it('honours the upstream retry-after exactly, whatever the attempt count or jitter', () => {
    expect(nextDelayMs(policy, 1, 1_500, fullJitter)).toBe(1_500);
    expect(nextDelayMs(policy, 7, 250, noJitter)).toBe(250);
    expect(nextDelayMs(policy, 3, 0, fullJitter)).toBe(0);
  });

  it('caps a retry-after longer than maximumRetryAfterMs', () => {
    expect(nextDelayMs({ ...policy, maximumRetryAfterMs: 10_000 }, 1, 999_999)).toBe(10_000);
    expect(nextDelayMs({ ...policy, maximumRetryAfterMs: 10_000 }, 1, 10_000)).toBe(10_000);
    expect(nextDelayMs(policy, 1, 3_600_000)).toBe(600_000);
  });

  it('grows exponentially from initialIntervalMs by backoffCoefficient', () => {
    expect([1, 2, 3, 4, 5].map((a) => nextDelayMs(policy, a, null, noJitter))).toEqual([
      1_000, 2_000, 4_000, 8_000, 16_000,
    ]);
    const triple = { ...policy, initialIntervalMs: 100, backoffCoefficient: 3 };
    expect([1, 2, 3].map((a) => nextDelayMs(triple, a, null, noJitter))).toEqual([100, 300, 900]);
  });

  it('treats attempts <= 1 as the first retry', () => {
    expect(nextDelayMs(policy, 0, null, noJitter)).toBe(1_000);
    expect(nextDelayMs(policy, 1, null, noJitter)).toBe(1_000);
  });

  it('never exceeds maximumIntervalMs, even after many attempts', () => {
    expect(nextDelayMs(policy, 7, null, noJitter)).toBe(60_000);
    expect(nextDelayMs(policy, 50, null, noJitter)).toBe(60_000);
    expect(nextDelayMs(policy, 10_000, null, noJitter)).toBe(60_000);
    const small = { ...policy, initialIntervalMs: 20, maximumIntervalMs: 200 };
    for (let a = 1; a < 40; a++)
      expect(nextDelayMs(small, a, null, Math.random)).toBeLessThanOrEqual(200);
  });

  it('applies jitter between 75% and 100% of the step', () => {
    expect(nextDelayMs(policy, 1, null, noJitter)).toBe(1_000);
    expect(nextDelayMs(policy, 1, null, () => 0.5)).toBe(875);
    expect(nextDelayMs(policy, 1, null, fullJitter)).toBe(750);
    expect(nextDelayMs(policy, 3, null, () => 0.2)).toBe(3_800);
    expect(nextDelayMs(policy, 40, null, fullJitter)).toBe(45_000);
    for (let i = 0; i <= 100; i++) {
      const r = i / 100;
      const d = nextDelayMs(policy, 2, null, () => r);
      expect(d).toBeGreaterThanOrEqual(1_500);
      expect(d).toBeLessThanOrEqual(2_000);
    }
  });

  it('uses Math.random by default and stays within the jitter band', () => {
    for (let i = 0; i < 200; i++) {
      const d = nextDelayMs(policy, 2, null);
      expect(d).toBeGreaterThanOrEqual(1_500);
      expect(d).toBeLessThanOrEqual(2_000);
    }
  });
});

describe('validateRetryPolicy', () => {
  it('accepts the defaults', () => {
    expect(() => validateRetryPolicy(DEFAULT_RETRY_POLICY)).not.toThrow();
    expect(() =>
      validateRetryPolicy({
        ...policy,
        initialIntervalMs: 0,
        maximumIntervalMs: 0,
        maximumAttempts: 1,
        backoffCoefficient: 1,
      }),
    ).not.toThrow();
  });

  it('rejects policies that could loop forever or never wait', () => {
    expect(() => validateRetryPolicy({ ...policy, maximumAttempts: 0 })).toThrow(/maximumAttempts/);
    expect(() => validateRetryPolicy({ ...policy, maximumAttempts: 1.5 })).toThrow(
      /maximumAttempts/,
    );
    expect(() => validateRetryPolicy({ ...policy, maximumAttempts: Number.NaN })).toThrow(
      /maximumAttempts/,
    );
    expect(() => validateRetryPolicy({ ...policy, initialIntervalMs: -1 })).toThrow(/intervals/);
    expect(() =>
      validateRetryPolicy({ ...policy, initialIntervalMs: 5_000, maximumIntervalMs: 1_000 }),
    ).toThrow(/intervals/);
    expect(() => validateRetryPolicy({ ...policy, backoffCoefficient: 0.5 })).toThrow(
      /backoffCoefficient/,
    );
  });
});
