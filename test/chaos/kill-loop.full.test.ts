import { describe, it } from 'vitest';
import { expectKillLoopClean, runKillLoop } from './harness/kill-loop.ts';

describe('kill -9 loop (full): 20,000 lines, latency 20–200 ms, 64 in flight, 50 kills', () => {
  it('loses nothing, duplicates nothing, pays twice only for what was in flight', async () => {
    const result = await runKillLoop({
      name: 'kill-loop-full',
      lines: 20_000,
      kills: 50,
      concurrency: 64,
      latencyMs: 110,
      latencyJitterMs: 90,
      finishTimeoutMs: 600_000,
    });
    expectKillLoopClean(result, 64, 40);
  }, 1_800_000);
});
