/**
 * The kill -9 loop (reliability catalogue A8 #1): one batch, the upstream simulator kept alive in
 * the test process, the server killed with SIGKILL at seeded random moments and restarted on the
 * same data directory each time. Returns the checker's report and the per-kill figures.
 */
import { expect } from 'vitest';
import { createSimulator } from '../../../src/simulator/simulator.ts';
import type { ServerProcess } from '../../helpers/server-process.ts';
import {
  analyseKills,
  check,
  formatKills,
  formatReport,
  idOfCall,
  type CheckReport,
  type KillAnalysis,
  type KillPoint,
} from './checker.ts';
import {
  FAST_ENGINE_ENV,
  Servers,
  clientFor,
  itemStates,
  killHard,
  lastSeq,
  removeDir,
  resultsOf,
  sleep,
  submitBatch,
  taggedLine,
  jsonlOf,
  tempDir,
  waitTerminal,
  withDb,
} from './chaos-env.ts';
import { createRandom, type ChaosRandom } from './prng.ts';

export interface KillLoopOptions {
  name: string;
  lines: number;
  kills: number;
  concurrency: number;
  /** Upstream latency mean and jitter (uniform): 110 ± 90 ms gives the catalogue's 20–200 ms. */
  latencyMs: number;
  latencyJitterMs: number;
  /** Bound for the final wait after the last kill. */
  finishTimeoutMs: number;
  env?: Record<string, string>;
}

export interface KillLoopResult {
  rng: ChaosRandom;
  status: string;
  report: CheckReport;
  analysis: KillAnalysis;
  kills: KillPoint[];
  /** Kills that hit the batch before it was terminal. */
  midBatchKills: number;
  /** Error lines with `internal_error` (quarantined after repeated lease losses) and of those, never sent upstream. */
  quarantined: string[];
  quarantinedNeverSent: string[];
  durationMs: number;
  summary: string;
}

interface BatchRow {
  status: string;
  total: number;
  completed: number;
  failed: number;
}

export async function runKillLoop(opts: KillLoopOptions): Promise<KillLoopResult> {
  const started = Date.now();
  const rng = createRandom(opts.name);
  const sim = createSimulator({
    latencyMs: opts.latencyMs,
    latencyJitterMs: opts.latencyJitterMs,
    seed: (rng.seed % 100_000) + 1,
  });
  const simUrl = (await sim.listen(0)).url;
  const dataDir = tempDir(opts.name);
  const servers = new Servers();
  const env = {
    ...FAST_ENGINE_ENV,
    OPENBATCH_UPSTREAM_URL: `${simUrl}/v1`,
    OPENBATCH_UPSTREAM_MAX_CONCURRENCY: String(opts.concurrency),
    ...opts.env,
  };
  try {
    const ids = Array.from({ length: opts.lines }, (_, i) => `line-${i}`);
    let proc: ServerProcess = await servers.spawn(dataDir, env);
    const { batchId } = await submitBatch(
      clientFor(proc.baseURL),
      jsonlOf(ids.map((id) => taggedLine(id))),
    );
    const kills: KillPoint[] = [];
    let midBatchKills = 0;
    let done = 0;
    const restartMs: number[] = [];
    const delays: number[] = [];
    for (let k = 0; k < opts.kills; k++) {
      // Spread the kills over the work left, so (nearly) all of them land mid-batch: the expected
      // engine time left divided by the kills left, drawn uniformly around it.
      const leftMs = ((opts.lines - done) * opts.latencyMs) / opts.concurrency + 300;
      const delay = Math.min(3_000, rng.range(0, (2 * leftMs) / (opts.kills - k)));
      await sleep(delay);
      const atMs = Date.now();
      await killHard(proc);
      await sleep(50); // requests already on the wire are logged by the simulator by now
      const row = withDb(
        dataDir,
        (db) =>
          db
            .prepare(`SELECT status, total, completed, failed FROM batches WHERE id = ?`)
            .get(batchId) as BatchRow,
      );
      const states = itemStates(dataDir, batchId);
      kills.push({ seqAtKill: lastSeq(sim), atMs, ...states });
      if (!['completed', 'failed', 'expired', 'cancelled'].includes(row.status)) midBatchKills++;
      done = row.completed + row.failed;
      const t0 = Date.now();
      proc = await servers.spawn(dataDir, env);
      restartMs.push(Date.now() - t0);
      delays.push(Math.round(delay));
      if (row.status === 'completed') break;
    }
    const client = clientFor(proc.baseURL);
    const batch = await waitTerminal(client, batchId, opts.finishTimeoutMs);
    const { output, errors, counts } = await resultsOf(client, batch);
    const calls = sim.calls();
    const report = check({
      inputIds: ids,
      calls,
      outputLines: output,
      errorLines: errors,
      counts,
    });
    const analysis = analyseKills(calls, kills);
    const sentIds = new Set(calls.map(idOfCall));
    const quarantined = errors
      .filter((l) => l.error?.code === 'internal_error')
      .map((l) => l.custom_id as string);
    const quarantinedNeverSent = quarantined.filter((id) => !sentIds.has(id));
    const durationMs = Date.now() - started;
    const perKillDup = analysis.perKill.map((k) => k.duplicatePaid);
    const perKillInFlight = analysis.perKill.map((k) => k.inFlightPaid);
    const summary = [
      formatReport(report, rng.tag),
      `${rng.tag} kills=${kills.length} midBatch=${midBatchKills} status=${batch.status} ` +
        `duplicate paid calls per kill=[${perKillDup.join(',')}] in flight (sent, 2xx, unrecorded) per kill=[${perKillInFlight.join(',')}] ` +
        `sum=${perKillDup.reduce((a, b) => a + b, 0)} bound=${opts.concurrency}×${kills.length} ` +
        `unexplained=${analysis.unexplainedDuplicates.length} quarantined(internal_error)=${quarantined.length} ` +
        `(never sent: ${quarantinedNeverSent.length}) duration=${durationMs} ms`,
      `${rng.tag} kill delays after ready (ms)=[${delays.join(',')}] restart times (ms)=[${restartMs.join(',')}]`,
      formatKills(analysis),
    ].join('\n');
    console.log(summary);
    return {
      rng,
      status: batch.status,
      report,
      analysis,
      kills,
      midBatchKills,
      quarantined,
      quarantinedNeverSent,
      durationMs,
      summary,
    };
  } finally {
    await servers.killAll();
    await sim.close();
    removeDir(dataDir);
  }
}

/** Shared pass criteria of the fast and the full kill -9 loop (A8 #1, design.md §4.1–4.2). */
export function expectKillLoopClean(
  r: KillLoopResult,
  concurrency: number,
  minKills: number,
): void {
  const why = r.summary;
  expect(r.status, why).toBe('completed');
  expect(r.report.lost, why).toEqual([]);
  expect(r.report.duplicated, why).toEqual([]);
  expect(r.report.unexpected, why).toEqual([]);
  expect(r.report.linesVsTotal.ok, why).toBe(true);
  expect(r.midBatchKills, why).toBeGreaterThanOrEqual(minKills);
  // Every second 2xx answer is explained by a kill that lost the first one before it was recorded.
  expect(r.analysis.unexplainedDuplicates, why).toEqual([]);
  for (const k of r.analysis.perKill) {
    expect(k.resentRecorded, `${why}\nkill #${k.kill} re-sent recorded lines`).toEqual([]);
    // Paid twice only for answers that were in flight (sent, not yet recorded) at that kill.
    expect(k.duplicatePaid, `${why}\nkill #${k.kill}`).toBeLessThanOrEqual(k.inFlightPaid);
  }
  expect(r.report.duplicatePaidCalls, why).toBeLessThanOrEqual(concurrency * r.kills.length);
  // A line is quarantined as poison (internal_error) only after it was really sent and lost its
  // lease poisonAfter times; a line that was never sent upstream cannot be the cause of a crash.
  expect(r.quarantinedNeverSent, why).toEqual([]);
}
