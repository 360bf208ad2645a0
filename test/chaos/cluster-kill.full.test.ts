import { describe, expect, it } from 'vitest';
import { expectClusterClean, runClusterChaos } from './harness/cluster-chaos.ts';

describe('cluster chaos (full): 3 processes on one PostgreSQL', () => {
  it('kill -9 of a random process every few seconds, restarted: 20,000 lines, lost 0, duplicated 0', async () => {
    const r = await runClusterChaos({
      name: 'cluster-kill-full',
      lines: 20_000,
      kills: 30,
      killEveryMs: 1_500,
      concurrency: 8,
      latencyMs: 40,
      finishTimeoutMs: 600_000,
    });
    expectClusterClean(r);
    expect(r.kills).toBeGreaterThanOrEqual(10);
  }, 1_800_000);
});
