import { describe, expect, it } from 'vitest';
import { parseDirective } from '../../src/simulator/directives.ts';
import { formatDuration } from '../../src/simulator/duration-format.ts';
import { createRateWindow } from '../../src/simulator/rate-window.ts';

function manualClock(startMs = 1_000_000): { nowMs(): number; advance(ms: number): void } {
  let now = startMs;
  return { nowMs: () => now, advance: (ms) => (now += ms) };
}

describe('rate window', () => {
  it('admits one second of requests, then refuses until the slice refills', () => {
    const clock = manualClock();
    const window = createRateWindow({ rpm: 60 }, clock);
    expect(window.admit('m', 10).allowed).toBe(true);
    const refused = window.admit('m', 10);
    expect(refused).toMatchObject({
      allowed: false,
      kind: 'requests',
      retryAfterMs: 1000,
      limit: 60,
      used: 1,
      requested: 1,
    });
    clock.advance(500);
    expect(window.admit('m', 10)).toMatchObject({ allowed: false, retryAfterMs: 500 });
    clock.advance(500);
    expect(window.admit('m', 10).allowed).toBe(true);
  });

  it('keeps separate windows per model and forgets them on reset', () => {
    const clock = manualClock();
    const window = createRateWindow({ rpm: 60 }, clock);
    expect(window.admit('a', 1).allowed).toBe(true);
    expect(window.admit('b', 1).allowed).toBe(true);
    expect(window.admit('a', 1).allowed).toBe(false);
    window.reset();
    expect(window.admit('a', 1).allowed).toBe(true);
  });

  it('charges tokens and lets an oversized request borrow from a full bucket', () => {
    const clock = manualClock();
    const window = createRateWindow({ tpm: 6000 }, clock); // 100 tokens/s, burst 100
    expect(window.admit('m', 60).allowed).toBe(true);
    expect(window.admit('m', 60)).toMatchObject({
      allowed: false,
      kind: 'tokens',
      retryAfterMs: 200,
      requested: 60,
    });
    clock.advance(600);
    expect(window.admit('m', 500).allowed).toBe(true); // full bucket: admitted into debt
    expect(window.admit('m', 1)).toMatchObject({ allowed: false, retryAfterMs: 4010 });
  });

  it('reports OpenAI-style headers', () => {
    const clock = manualClock();
    const window = createRateWindow({ rpm: 600, tpm: 60_000 }, clock);
    const decision = window.admit('m', 1000);
    expect(decision.headers).toEqual({
      'x-ratelimit-limit-requests': '600',
      'x-ratelimit-remaining-requests': '599',
      'x-ratelimit-reset-requests': '100ms',
      'x-ratelimit-limit-tokens': '60000',
      'x-ratelimit-remaining-tokens': '59000',
      'x-ratelimit-reset-tokens': '1s',
    });
    clock.advance(400);
    expect(window.headers('m')['x-ratelimit-remaining-tokens']).toBe('59400');
  });
});

describe('formatDuration', () => {
  it('formats like x-ratelimit-reset-*', () => {
    expect([0, 120, 1000, 17_280, 90_500, 360_000, 3_723_000].map(formatDuration)).toEqual([
      '0s',
      '120ms',
      '1s',
      '17.28s',
      '1m30.5s',
      '6m0s',
      '1h2m3s',
    ]);
  });
});

describe('parseDirective', () => {
  it('parses keys, counts and tags', () => {
    expect(parseDirective('{"content":"hi [sim:status=500x2;latency=30;id=line-1]"}')).toEqual({
      marker: 'status=500x2;latency=30;id=line-1',
      status: 500,
      times: 2,
      latencyMs: 30,
      action: null,
      trickleMs: null,
    });
    expect(parseDirective('[sim:reset-mid-body;trickle=5]')).toMatchObject({
      action: 'reset-mid-body',
      trickleMs: 5,
    });
    expect(parseDirective('[sim:id=line-17]')).toMatchObject({
      marker: 'id=line-17',
      status: null,
      action: null,
    });
    expect(parseDirective('no marker here')).toBeNull();
  });
});
