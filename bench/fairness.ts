/**
 * Benchmark 4 — fairness. Two batches on one rate-limited upstream: with different deadlines the
 * earlier deadline should get (nearly) all the capacity and finish first; with the same deadline
 * they should share it round-robin. Prints completion order and each batch's share of the sends
 * made while both were running.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fmt, spawnOpenbatch } from './bench-helpers.ts';
import { runBatchThrough } from './run-batch.ts';
import { markerId, readCallLog } from './sim-log.ts';

const LINES = Number(process.env.BENCH_FAIR_LINES ?? 1_000);
const RPM = 12_000;

const linesFor = (tag: string) =>
  Array.from({ length: LINES }, (_, i) => ({
    custom_id: `${tag}-${i}`,
    method: 'POST',
    url: '/v1/chat/completions',
    body: {
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: `[sim:id=${tag}-${i}] Translate sentence ${i}` }],
      max_tokens: 16,
    },
  }));

async function scenario(label: string, windows: { first: string; second: string }): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'openbatch-bench-fair-'));
  const log = join(dir, 'calls.jsonl');
  const sim = await spawnOpenbatch(
    ['simulate', '--port', '0', '--rpm', String(RPM), '--latency-ms', '50', '--log', log],
    {},
    /listening on (http:\/\/\S+)\/v1/,
  );
  const server = await spawnOpenbatch(
    ['serve', '--port', '0', '--data-dir', join(dir, 'data')],
    {
      OPENBATCH_UPSTREAM_URL: `${sim.url}/v1`,
      OPENBATCH_UPSTREAM_RPM: String(RPM),
      OPENBATCH_TICK_MS: '100',
    },
    /openbatch listening on (http:\/\/\S+\/v1)/,
  );
  try {
    const order: string[] = [];
    const run = (tag: string, window: string) =>
      runBatchThrough(server.url, linesFor(tag), join(dir, `${tag}.jsonl`), window).then(
        (r) => order.push(`${tag} (${window})`) && r,
      );
    const first = run('first', windows.first);
    await new Promise((r) => setTimeout(r, 300)); // the second batch arrives while the first runs
    await Promise.all([first, run('second', windows.second)]);
    await sim.stop();
    const calls = readCallLog(log).filter((c) => c.status === 200);
    const secondStart = calls.find((c) => markerId(c.marker).startsWith('second'))!.atMs;
    const lastOf = (tag: string) =>
      calls.filter((c) => markerId(c.marker).startsWith(tag)).at(-1)!.atMs;
    const overlapEnd = Math.min(lastOf('first'), lastOf('second'));
    const both = calls.filter((c) => c.atMs >= secondStart && c.atMs <= overlapEnd);
    const share = (tag: string) =>
      (100 * both.filter((c) => markerId(c.marker).startsWith(tag)).length) /
      Math.max(1, both.length);
    console.log(`  ${label}: completion order ${order.join(' → ')}`);
    console.log(
      `    while both ran (${fmt((overlapEnd - secondStart) / 1000, 1)} s, ${both.length} sends): first ${fmt(share('first'), 1)}%, second ${fmt(share('second'), 1)}%`,
    );
  } finally {
    await server.stop();
    await sim.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runFairnessBench(): Promise<void> {
  console.log(
    `fairness: two batches of ${fmt(LINES)} lines on one upstream limited to ${fmt(RPM)} RPM`,
  );
  await scenario('different deadlines (first 2h, second 1h)', { first: '2h', second: '1h' });
  await scenario('same deadline (both 1h)', { first: '1h', second: '1h' });
}

if (import.meta.url === `file://${process.argv[1]}`) await runFairnessBench();
