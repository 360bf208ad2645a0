/**
 * Three `openbatch serve` processes on one PostgreSQL database and one shared blob folder act as
 * one service: any of them answers any call, all of them run the lines of a batch, and a process
 * killed with -9 loses nothing (its leased lines go back to the others after their lease).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createSimulator, type Simulator } from '../../src/simulator/simulator.ts';
import { createDatabase } from '../helpers/postgres-server.ts';
import { spawnServer, type ServerProcess } from '../helpers/server-process.ts';

const PROCESSES = 3;
const CONCURRENCY = 4;

interface Cluster {
  sims: Simulator[];
  servers: ServerProcess[];
  clients: OpenAI[];
  env: (i: number) => Record<string, string>;
  dirs: string[];
}

const running: Cluster[] = [];
afterEach(async () => {
  for (const c of running.splice(0)) {
    for (const s of c.servers) if (s.child.exitCode === null) s.child.kill('SIGKILL');
    await Promise.all(c.servers.map((s) => s.exited));
    await Promise.all(c.sims.map((s) => s.close()));
    for (const d of c.dirs) rmSync(d, { recursive: true, force: true });
  }
});

/** Each process calls a simulator of its own, so the calls each one made can be counted. */
async function startCluster(latencyMs: number): Promise<Cluster> {
  const databaseUrl = await createDatabase(inject('postgresUrl'), 'cluster');
  const shared = mkdtempSync(join(tmpdir(), 'openbatch-shared-'));
  const sims = Array.from({ length: PROCESSES }, () => createSimulator({ latencyMs }));
  const urls = await Promise.all(sims.map(async (s) => (await s.listen(0)).url));
  const dirs = [shared];
  const env = (i: number) => ({
    OPENBATCH_DATABASE_URL: databaseUrl,
    OPENBATCH_BLOB_STORE: shared,
    OPENBATCH_UPSTREAM_URL: `${urls[i]}/v1`,
    OPENBATCH_UPSTREAM_MAX_CONCURRENCY: String(CONCURRENCY),
    OPENBATCH_TICK_MS: '100',
    OPENBATCH_REQUEST_TIMEOUT_MS: '3000',
    OPENBATCH_LEASE_MS: '4000',
  });
  const servers: ServerProcess[] = [];
  for (let i = 0; i < PROCESSES; i++) {
    const dataDir = mkdtempSync(join(tmpdir(), `openbatch-node${i}-`));
    dirs.push(dataDir);
    servers.push(await spawnServer(dataDir, env(i)));
  }
  const clients = servers.map(
    (s) => new OpenAI({ apiKey: 'k', baseURL: s.baseURL, maxRetries: 0, timeout: 20_000 }),
  );
  const cluster = { sims, servers, clients, env, dirs };
  running.push(cluster);
  return cluster;
}

function jsonl(lines: number): string {
  return Array.from({ length: lines }, (_, i) =>
    JSON.stringify({
      custom_id: `line-${i}`,
      method: 'POST',
      url: '/v1/chat/completions',
      body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `question ${i}` }] },
    }),
  ).join('\n');
}

async function waitDone(client: OpenAI, id: string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const b = await client.batches.retrieve(id);
    if (['completed', 'failed', 'expired', 'cancelled'].includes(b.status)) return b;
    if (Date.now() > deadline) throw new Error(`batch still ${b.status} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function outputIds(client: OpenAI, fileId: string): Promise<string[]> {
  const text = await (await client.files.content(fileId)).text();
  return text
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { custom_id: string }).custom_id);
}

const callsTo = (sim: Simulator) => sim.calls().length;

describe('three processes on one PostgreSQL', () => {
  it('answer any call for any batch and share the lines of a running batch', async () => {
    const c = await startCluster(10);
    const lines = 600;
    const [a, b, d] = c.clients as [OpenAI, OpenAI, OpenAI];
    const file = await a.files.create({
      file: await toFile(Buffer.from(jsonl(lines)), 'in.jsonl'),
      purpose: 'batch',
    });
    const batch = await b.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    const done = await waitDone(d, batch.id, 90_000);
    expect(done.status).toBe('completed');
    expect(done.request_counts).toEqual({ total: lines, completed: lines, failed: 0 });
    const ids = await outputIds(a, done.output_file_id!);
    expect(ids).toHaveLength(lines);
    expect(new Set(ids).size).toBe(lines);
    // Every process ran a share of the lines, and no line was sent twice.
    const perProcess = c.sims.map(callsTo);
    for (const calls of perProcess) expect(calls).toBeGreaterThan(lines / 10);
    expect(perProcess.reduce((x, y) => x + y, 0)).toBe(lines);
  });

  it('loses nothing when a process is killed with -9 mid-batch', async () => {
    const c = await startCluster(40);
    const lines = 600;
    const [a, , d] = c.clients as [OpenAI, OpenAI, OpenAI];
    const file = await a.files.create({
      file: await toFile(Buffer.from(jsonl(lines)), 'in.jsonl'),
      purpose: 'batch',
    });
    const batch = await a.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    const victim = c.servers[1]!;
    while (callsTo(c.sims[1]!) < 40) await new Promise((r) => setTimeout(r, 20));
    const killedAtMs = Date.now();
    victim.child.kill('SIGKILL');
    await victim.exited;
    const done = await waitDone(d, batch.id, 120_000);
    expect(done.status).toBe('completed');
    expect(done.request_counts).toEqual({ total: lines, completed: lines, failed: 0 });
    const ids = await outputIds(a, done.output_file_id!);
    expect(new Set(ids).size).toBe(lines);
    expect(ids).toHaveLength(lines);
    // A line is paid twice only if the killed process had sent it and not yet committed its
    // answer: its calls of the last moments (in flight, or answered within one group commit).
    const byBody = new Map<string, number[]>();
    c.sims.forEach((sim, i) => {
      for (const call of sim.calls())
        byBody.set(call.bodySha256, [...(byBody.get(call.bodySha256) ?? []), i]);
    });
    const twice = [...byBody.values()].filter((sims) => sims.length > 1);
    for (const sims of twice) expect(sims).toContain(1);
    const lateVictimCalls = c.sims[1]!.calls().filter((call) => call.atMs >= killedAtMs - 1_000);
    expect(twice.length).toBeLessThanOrEqual(lateVictimCalls.length);
    expect(twice.length).toBeLessThan(lines / 10);
  });
});
