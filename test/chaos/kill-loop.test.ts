import { describe, it } from 'vitest';
import { expectKillLoopClean, runKillLoop } from './harness/kill-loop.ts';

describe('kill -9 loop (fast): 2,000 lines, latency 20–200 ms, 64 in flight, 12 kills', () => {
  it('loses nothing, duplicates nothing, pays twice only for what was in flight', async () => {
    const result = await runKillLoop({
      name: 'kill-loop-fast',
      lines: 2_000,
      kills: 12,
      concurrency: 64,
      latencyMs: 110,
      latencyJitterMs: 90,
      finishTimeoutMs: 120_000,
    });
    expectKillLoopClean(result, 64, 10);
  }, 240_000);
});
