import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSimulator, type Simulator } from '../../src/simulator/simulator.ts';
import type { ServerProcess } from '../helpers/server-process.ts';
import { leasedLines, recordedLines } from '../helpers/store-peek.ts';
import { callsById, check, formatReport } from './harness/checker.ts';
import {
  FAST_ENGINE_ENV,
  Servers,
  clientFor,
  jsonlOf,
  killHard,
  lastSeq,
  removeDir,
  resultsOf,
  submitBatch,
  taggedLine,
  tempDir,
  waitTerminal,
  waitUntil,
} from './harness/chaos-env.ts';

/**
 * Poison lines (design.md §4.4, engine README invariant 4): a line whose processing takes the
 * process down every time is quarantined after `poisonAfter` lost leases and reported as an
 * `internal_error` line; the rest of the batch completes.
 *
 * The crash is modelled as an external kill -9 (the OOM killer, a native crash) that strikes
 * whenever that line is in flight: the line hangs upstream (`[sim:hang]`), and the test kills the
 * server as soon as the upstream has seen it.
 */

const POISON_AFTER = 3;

/** Lines answered 2xx so far (the committed prefix of the batch's output spool). */
function succeeded(dataDir: string, batchId: string): number {
  return recordedLines(dataDir, batchId).output.length;
}

/** Lines leased with no recorded outcome (undone lines of leased chunks). */
function leased(dataDir: string, batchId: string): number {
  return leasedLines(dataDir, batchId).length;
}

/**
 * Leased lines whose custom_id starts with `prefix` and whose sent mark under the current lease
 * is committed (≤ ~10 ms after the send; before it for a chunk that already lost a lease).
 */
function markedSent(dataDir: string, batchId: string, prefix: string): number {
  return leasedLines(dataDir, batchId).filter((l) => l.sent && l.custom_id.startsWith(prefix))
    .length;
}

describe('poison line', () => {
  let sim: Simulator;
  let simUrl: string;
  const servers = new Servers();
  const dirs: string[] = [];
  beforeAll(async () => {
    sim = createSimulator({ latencyMs: 20 });
    simUrl = (await sim.listen(0)).url;
  });
  afterAll(async () => {
    await servers.killAll();
    await sim.close();
    for (const d of dirs) removeDir(d);
  });

  const envFor = (concurrency: number) => ({
    ...FAST_ENGINE_ENV,
    OPENBATCH_UPSTREAM_URL: `${simUrl}/v1`,
    OPENBATCH_UPSTREAM_MAX_CONCURRENCY: String(concurrency),
    OPENBATCH_POISON_AFTER: String(POISON_AFTER),
  });

  it('is quarantined after poisonAfter crashes while the rest of the batch completes', async () => {
    sim.reset();
    const dataDir = tempDir('poison');
    dirs.push(dataDir);
    const env = envFor(4);
    const others = Array.from({ length: 40 }, (_, i) => `ok-${i}`);
    const ids = ['poison', ...others];
    let proc: ServerProcess = await servers.spawn(dataDir, env);
    const { batchId } = await submitBatch(
      clientFor(proc.baseURL),
      jsonlOf([taggedLine('poison', 'hang'), ...others.map((id) => taggedLine(id))]),
    );
    const poisonCalls = () =>
      sim.calls().filter((c) => c.marker?.split(';').includes('id=poison')).length;
    // First run: let every other line finish, so only the poison line is in flight at each crash.
    await waitUntil(
      () => poisonCalls() === 1 && succeeded(dataDir, batchId) === others.length,
      30_000,
      'the other lines to finish while the poison line hangs',
    );
    let crashes = 0;
    for (let round = 0; round < POISON_AFTER + 2; round++) {
      await killHard(proc);
      crashes++;
      const before = poisonCalls();
      proc = await servers.spawn(dataDir, env);
      const status = (await clientFor(proc.baseURL).batches.retrieve(batchId)).status;
      if (status !== 'in_progress') break;
      // The restarted engine sends the poison line again; it "crashes" the process again.
      await waitUntil(() => poisonCalls() > before, 30_000, 'the poison line to be re-sent');
    }
    const client = clientFor(proc.baseURL);
    const batch = await waitTerminal(client, batchId, 30_000);
    const { output, errors, counts } = await resultsOf(client, batch);
    const report = check({
      inputIds: ids,
      calls: sim.calls(),
      outputLines: output,
      errorLines: errors,
      counts,
    });
    const why = `${formatReport(report, '[poison]')} crashes=${crashes} poisonCalls=${poisonCalls()}`;
    console.log(why);
    expect(report.ok, why).toBe(true);
    expect(batch.status, why).toBe('completed');
    expect(crashes, why).toBe(POISON_AFTER);
    expect(poisonCalls(), why).toBe(POISON_AFTER);
    expect(batch.request_counts, why).toEqual({ total: 41, completed: 40, failed: 1 });
    expect(errors, why).toHaveLength(1);
    expect(errors[0]?.custom_id, why).toBe('poison');
    expect(errors[0]?.response, why).toBeNull();
    expect(errors[0]?.error?.code, why).toBe('internal_error');
    expect(output.map((l) => l.custom_id as string).sort(), why).toEqual([...others].sort());
  }, 120_000);

  it('never quarantines a line that was only claimed ahead and never sent upstream', async () => {
    // Concurrency 2: the dispatcher claims the batch's one chunk (all 6 lines: a claim takes at
    // least a whole chunk), sends 2 (both hang) and keeps the other 4 claimed in memory. Each
    // kill -9 costs the whole chunk its lease; lines 3 to 6 were never sent, so they cannot be
    // what crashed the process, yet they lose the lease as well.
    sim.reset();
    const dataDir = tempDir('poison-ahead');
    dirs.push(dataDir);
    const env = envFor(2);
    const ids = ['hang-1', 'hang-2', 'ahead-3', 'ahead-4', 'tail-5', 'tail-6'];
    const lines = ids.map((id) => taggedLine(id, id.startsWith('hang') ? 'hang' : ''));
    let proc: ServerProcess = await servers.spawn(dataDir, env);
    const { batchId } = await submitBatch(clientFor(proc.baseURL), jsonlOf(lines));
    // The first crash strikes with two lines in flight and four claimed ahead. After it, the two
    // lines that were in flight move into chunks of their own, held back (SUSPECT_DELAY_MS ×
    // losses) while the others run and finish; the next crashes strike when the hanging lines
    // are out again (two one-line chunks leased, nothing else).
    const hanging = (from: number) =>
      sim.calls().filter((c) => c.seq > from && /id=hang-/.test(c.marker ?? '')).length;
    for (let crash = 0; crash < POISON_AFTER; crash++) {
      const from = lastSeq(sim);
      await waitUntil(
        () =>
          hanging(from) === 2 &&
          // The crash strikes with both requests out and their sent marks recorded (a crash
          // within ~10 ms of a first send is charged from the line's next crash on).
          markedSent(dataDir, batchId, 'hang-') === 2 &&
          leased(dataDir, batchId) === (crash === 0 ? ids.length : 2),
        60_000,
        crash === 0 ? 'two lines in flight and four claimed ahead' : 'the two lines out again',
      );
      await killHard(proc);
      proc = await servers.spawn(dataDir, env);
    }
    const client = clientFor(proc.baseURL);
    const batch = await waitTerminal(client, batchId, 30_000);
    const { output, errors, counts } = await resultsOf(client, batch);
    const calls = sim.calls();
    const report = check({ inputIds: ids, calls, outputLines: output, errorLines: errors, counts });
    const sent = callsById(calls);
    const quarantined = errors
      .filter((l) => l.error?.code === 'internal_error')
      .map(
        (l) => `${l.custom_id as string} (sent ${sent.get(l.custom_id as string)?.length ?? 0}×)`,
      );
    const why = `${formatReport(report, '[poison-ahead]')} quarantined=${quarantined.join(', ')}`;
    console.log(why);
    expect(report.ok, why).toBe(true);
    expect(batch.status, why).toBe('completed');
    // The two hanging lines were sent POISON_AFTER times each: quarantining them is by design.
    expect(sent.get('hang-1')?.length, why).toBe(POISON_AFTER);
    expect(
      quarantined.filter((q) => q.includes('(sent 0×)')),
      why,
    ).toEqual([]);
    const answered = output.map((l) => l.custom_id as string).sort();
    expect(answered, why).toEqual(['ahead-3', 'ahead-4', 'tail-5', 'tail-6']);
  }, 180_000);
});
