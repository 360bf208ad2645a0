import { describe, expect, it } from 'vitest';
import { expectClusterClean, runClusterChaos } from './harness/cluster-chaos.ts';

describe('cluster chaos (fast): 3 processes on one PostgreSQL', () => {
  it('kill -9 of a random process every ~2 s, restarted: 4,000 lines, lost 0, duplicated 0', async () => {
    const r = await runClusterChaos({
      name: 'cluster-kill-fast',
      lines: 4_000,
      kills: 6,
      killEveryMs: 2_000,
      concurrency: 16,
      latencyMs: 40,
      finishTimeoutMs: 180_000,
    });
    expectClusterClean(r);
    expect(r.kills).toBeGreaterThanOrEqual(3);
  }, 400_000);

  it('PostgreSQL stopped for 10 s mid-batch: nothing lost, the batch completes', async () => {
    const r = await runClusterChaos({
      name: 'cluster-pg-outage',
      lines: 3_000,
      kills: 0,
      killEveryMs: 0,
      outageMs: 10_000,
      outageAfterMs: 2_000,
      // Longer than the outage: a lease that ran out while the database was away would send its
      // lines again (fenced, so never answered twice, but paid twice).
      leaseMs: 20_000,
      concurrency: 16,
      latencyMs: 40,
      finishTimeoutMs: 180_000,
    });
    expectClusterClean(r);
  }, 400_000);
});
