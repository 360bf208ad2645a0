/**
 * Chaos on a cluster (issue 9): three `openbatch serve` processes on one PostgreSQL of their own
 * and one shared blob folder, one batch spread over all three. Process i always calls simulator
 * i, so the calls a killed process made can be told apart. Faults: kill -9 of a random process
 * and restart on its data directory, or PostgreSQL stopped and started again.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SimCall, Simulator } from '../../../src/simulator/types.ts';
import { createSimulator } from '../../../src/simulator/simulator.ts';
import {
  createDatabase,
  startPostgres,
  type PostgresServer,
} from '../../helpers/postgres-server.ts';
import type { ServerProcess } from '../../helpers/server-process.ts';
import { check, idOfCall, isPaid, type CheckReport } from './checker.ts';
import {
  FAST_ENGINE_ENV,
  Servers,
  TERMINAL,
  clientFor,
  jsonlOf,
  killHard,
  resultsOf,
  sleep,
  submitBatch,
  taggedLine,
  waitTerminal,
} from './chaos-env.ts';
import { createRandom } from './prng.ts';
import { expect } from 'vitest';

export const PROCESSES = 3;

export interface ClusterChaosOptions {
  name: string;
  lines: number;
  /** kill -9 of a random process every `killEveryMs` (± half), `kills` times; 0 for none. */
  kills: number;
  killEveryMs: number;
  /** Stop PostgreSQL this long once, after `outageAfterMs` (0: no outage). */
  outageMs?: number;
  outageAfterMs?: number;
  concurrency: number;
  latencyMs: number;
  finishTimeoutMs: number;
  /** @default 4000 (a killed process's lines go back to the others soon) */
  leaseMs?: number;
}

export interface ClusterChaosResult {
  status: string;
  report: CheckReport;
  kills: number;
  /** Lines paid twice, and what the killed processes had sent in the second before each kill. */
  duplicatePaid: number;
  victimLateCalls: number;
  callsPerProcess: number[];
  summary: string;
}

interface Cluster {
  pg: PostgresServer;
  sims: Simulator[];
  servers: Servers;
  procs: ServerProcess[];
  dirs: string[];
  env: (i: number) => Record<string, string>;
}

async function startCluster(opts: ClusterChaosOptions): Promise<Cluster> {
  const pg = await startPostgres();
  const databaseUrl = await createDatabase(pg.url, 'chaos');
  const shared = mkdtempSync(join(tmpdir(), 'openbatch-chaos-shared-'));
  const sims = Array.from({ length: PROCESSES }, () =>
    createSimulator({ latencyMs: opts.latencyMs, latencyJitterMs: opts.latencyMs / 2 }),
  );
  const urls = await Promise.all(sims.map(async (s) => (await s.listen(0)).url));
  const dirs = [shared, ...sims.map((_, i) => mkdtempSync(join(tmpdir(), `openbatch-chaos${i}-`)))];
  const env = (i: number) => ({
    ...FAST_ENGINE_ENV,
    OPENBATCH_DATABASE_URL: databaseUrl,
    OPENBATCH_BLOB_STORE: shared,
    OPENBATCH_UPSTREAM_URL: `${urls[i]}/v1`,
    OPENBATCH_UPSTREAM_MAX_CONCURRENCY: String(opts.concurrency),
    OPENBATCH_REQUEST_TIMEOUT_MS: '3000',
    OPENBATCH_LEASE_MS: String(opts.leaseMs ?? 4_000),
  });
  const servers = new Servers();
  const procs: ServerProcess[] = [];
  for (let i = 0; i < PROCESSES; i++) procs.push(await servers.spawn(dirs[i + 1]!, env(i)));
  return { pg, sims, servers, procs, dirs, env };
}

async function stopCluster(c: Cluster): Promise<void> {
  await c.servers.killAll();
  await Promise.all(c.sims.map((s) => s.close()));
  await c.pg.stop();
  for (const d of c.dirs) rmSync(d, { recursive: true, force: true });
}

/** Any live process answers for the batch (a killed one is being restarted). */
async function anyClient(c: Cluster) {
  const live = c.procs.find((p) => p.child.exitCode === null && p.child.signalCode === null);
  return clientFor((live ?? c.procs[0]!).baseURL);
}

export async function runClusterChaos(opts: ClusterChaosOptions): Promise<ClusterChaosResult> {
  const rng = createRandom(opts.name);
  const c = await startCluster(opts);
  try {
    const ids = Array.from({ length: opts.lines }, (_, i) => `line-${i}`);
    const { batchId } = await submitBatch(
      clientFor(c.procs[0]!.baseURL),
      jsonlOf(ids.map((id) => taggedLine(id))),
    );
    const killed: { victim: number; atMs: number }[] = [];
    const faults = (async () => {
      if (opts.outageMs) {
        await sleep(opts.outageAfterMs ?? 2_000);
        c.pg.ctl(['-m', 'fast', 'stop']);
        await sleep(opts.outageMs);
        c.pg.ctl(['-w', 'start']);
      }
      for (let k = 0; k < opts.kills; k++) {
        await sleep(rng.range(opts.killEveryMs / 2, (3 * opts.killEveryMs) / 2));
        const status = (await (await anyClient(c)).batches.retrieve(batchId)).status;
        if ((TERMINAL as readonly string[]).includes(status)) break;
        const victim = Math.floor(rng.range(0, PROCESSES));
        killed.push({ victim, atMs: Date.now() });
        await killHard(c.procs[victim]!);
        c.procs[victim] = await c.servers.spawn(c.dirs[victim + 1]!, c.env(victim));
      }
    })();
    await faults;
    const client = await anyClient(c);
    const batch = await waitTerminal(client, batchId, opts.finishTimeoutMs);
    const { output, errors, counts } = await resultsOf(client, batch);
    const calls = c.sims.flatMap((s) => [...s.calls()]);
    const report = check({ inputIds: ids, calls, outputLines: output, errorLines: errors, counts });
    const victimLateCalls = killed.reduce(
      (sum, k) => sum + lateCalls(c.sims[k.victim]!.calls(), k.atMs),
      0,
    );
    const callsPerProcess = c.sims.map((s) => s.calls().length);
    const summary =
      `[${opts.name}] ${opts.lines} lines, ${PROCESSES} processes, ${killed.length} kills` +
      (opts.outageMs ? `, PostgreSQL stopped ${opts.outageMs / 1000} s` : '') +
      `: status ${batch.status}, lost ${report.lost.length}, duplicated ${report.duplicated.length}, ` +
      `paid twice ${report.duplicatePaidCalls} (killed processes' calls in the second before a kill: ${victimLateCalls}), ` +
      `calls per process ${callsPerProcess.join('/')}, errors ${JSON.stringify(report.errorCodes)}`;
    return {
      status: batch.status,
      report,
      kills: killed.length,
      duplicatePaid: report.duplicatePaidCalls,
      victimLateCalls,
      callsPerProcess,
      summary,
    };
  } finally {
    await stopCluster(c);
  }
}

/** Paid calls a process made in the second before it was killed (in flight, or not yet committed). */
function lateCalls(calls: readonly SimCall[], killedAtMs: number): number {
  return calls.filter(
    (call) =>
      isPaid(call) && idOfCall(call) && call.atMs >= killedAtMs - 1_000 && call.atMs <= killedAtMs,
  ).length;
}

/** What every cluster scenario must show: every line once, paid twice only for what was in flight. */
export function expectClusterClean(r: ClusterChaosResult): void {
  console.log(r.summary);
  expect(r.status).toBe('completed');
  expect(r.report.lost).toEqual([]);
  expect(r.report.duplicated).toEqual([]);
  expect(r.report.unexpected).toEqual([]);
  expect(r.report.linesVsTotal.ok).toBe(true);
  expect(r.duplicatePaid).toBeLessThanOrEqual(r.victimLateCalls);
  // The lines were spread over the three processes.
  for (const calls of r.callsPerProcess) expect(calls).toBeGreaterThan(0);
}
