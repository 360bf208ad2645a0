import { afterAll, describe, expect, it } from 'vitest';
import { createSimulator, type Simulator } from '../../src/simulator/simulator.ts';
import { check, formatReport } from './harness/checker.ts';
import {
  FAST_ENGINE_ENV,
  Servers,
  clientFor,
  jsonlOf,
  removeDir,
  resultsOf,
  sleep,
  submitBatch,
  taggedLine,
  tempDir,
  waitTerminal,
  waitUntil,
} from './harness/chaos-env.ts';
import { undoneLines } from '../helpers/store-peek.ts';
import { createRandom } from './harness/prng.ts';

/**
 * A server that freezes (SIGSTOP) for longer than its lease, then continues (SIGCONT). The lease
 * is OPENBATCH_REQUEST_TIMEOUT_MS + 60 s (compose.ts, not configurable on its own), so with a
 * 1.5 s request timeout the stop lasts 65 s. On waking, the lease sweep requeues the items whose
 * answers are sitting in the socket buffers; whatever wins, each custom_id gets exactly one line.
 */

const REQUEST_TIMEOUT_MS = 1_500;
const LEASE_MS = REQUEST_TIMEOUT_MS + 60_000;

describe('freeze past the lease (SIGSTOP / SIGCONT)', () => {
  const servers = new Servers();
  let sim: Simulator | null = null;
  const dirs: string[] = [];
  afterAll(async () => {
    await servers.killAll();
    await sim?.close();
    for (const d of dirs) removeDir(d);
  });

  it('keeps exactly one line per custom_id when the frozen process wakes up', async () => {
    const rng = createRandom('freeze-sigstop');
    sim = createSimulator({ latencyMs: 500, latencyJitterMs: 300, seed: (rng.seed % 1000) + 1 });
    const simUrl = (await sim.listen(0)).url;
    const dataDir = tempDir('freeze-full');
    dirs.push(dataDir);
    const env = {
      ...FAST_ENGINE_ENV,
      OPENBATCH_UPSTREAM_URL: `${simUrl}/v1`,
      OPENBATCH_UPSTREAM_MAX_CONCURRENCY: '64',
      OPENBATCH_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
    };
    const ids = Array.from({ length: 600 }, (_, i) => `line-${i}`);
    const proc = await servers.spawn(dataDir, env);
    const client = clientFor(proc.baseURL);
    const { batchId } = await submitBatch(client, jsonlOf(ids.map((id) => taggedLine(id))));
    const threshold = rng.int(64, 300);
    const s = sim;
    await waitUntil(() => s.calls().length >= threshold, 60_000, 'the batch to be under way');
    proc.child.kill('SIGSTOP');
    const stoppedAt = Date.now();
    const callsAtStop = sim.calls().length;
    await sleep(LEASE_MS + 3_500);
    const leasedWhileFrozen = undoneLines(dataDir, batchId, ['leased']);
    proc.child.kill('SIGCONT');
    const batch = await waitTerminal(client, batchId, 120_000);
    const { output, errors, counts } = await resultsOf(client, batch);
    const report = check({
      inputIds: ids,
      calls: sim.calls(),
      outputLines: output,
      errorLines: errors,
      counts,
    });
    const why =
      `${formatReport(report, rng.tag)} frozen for ${Date.now() - stoppedAt} ms (lease ${LEASE_MS}) ` +
      `callsAtStop=${callsAtStop} leasedWhileFrozen=${leasedWhileFrozen} status=${batch.status}`;
    console.log(why);
    expect(report.lost, why).toEqual([]);
    expect(report.duplicated, why).toEqual([]);
    expect(report.unexpected, why).toEqual([]);
    expect(report.linesVsTotal.ok, why).toBe(true);
    expect(batch.status, why).toBe('completed');
    // Re-sent after the lease ran out: at most what the frozen process held.
    expect(report.duplicatePaidCalls, why).toBeLessThanOrEqual(leasedWhileFrozen);
  }, 300_000);
});
