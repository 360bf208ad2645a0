/**
 * Three `openbatch serve` processes on one PostgreSQL share one upstream's rate limit, learned
 * from its headers (nothing configured): together they run at the limit, not three times it.
 * In the chaos project (run alone): it measures time, and a loaded machine would skew it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createSimulator, type Simulator } from '../../src/simulator/simulator.ts';
import { createDatabase } from '../helpers/postgres-server.ts';
import { spawnServer, type ServerProcess } from '../helpers/server-process.ts';

const PROCESSES = 3;
const RPM = 6_000;
const LINES = 9_000;

const servers: ServerProcess[] = [];
const dirs: string[] = [];
let sim: Simulator | null = null;
afterAll(async () => {
  for (const s of servers) if (s.child.exitCode === null) s.child.kill('SIGKILL');
  await Promise.all(servers.map((s) => s.exited));
  await sim?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function jsonl(lines: number): string {
  return Array.from({ length: lines }, (_, i) =>
    JSON.stringify({
      custom_id: `line-${i}`,
      method: 'POST',
      url: '/v1/chat/completions',
      body: {
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: `question ${i}` }],
        max_tokens: 5,
      },
    }),
  ).join('\n');
}

describe('shared rate limits', () => {
  it(`three processes hold a ${RPM} RPM limit learned from headers: ≤ 1.10× the minimum time, ≤ 2% 429s`, async () => {
    sim = createSimulator({ latencyMs: 20, rpm: RPM });
    const { url } = await sim.listen(0);
    const databaseUrl = await createDatabase(inject('postgresUrl'), 'limits');
    const shared = mkdtempSync(join(tmpdir(), 'openbatch-shared-'));
    dirs.push(shared);
    for (let i = 0; i < PROCESSES; i++) {
      const dataDir = mkdtempSync(join(tmpdir(), `openbatch-limits${i}-`));
      dirs.push(dataDir);
      servers.push(
        await spawnServer(dataDir, {
          OPENBATCH_DATABASE_URL: databaseUrl,
          OPENBATCH_BLOB_STORE: shared,
          OPENBATCH_UPSTREAM_URL: `${url}/v1`,
          OPENBATCH_UPSTREAM_MAX_CONCURRENCY: '32',
          OPENBATCH_TICK_MS: '100',
        }),
      );
    }
    const clients = servers.map(
      (s) => new OpenAI({ apiKey: 'k', baseURL: s.baseURL, maxRetries: 0, timeout: 20_000 }),
    );
    const file = await clients[0]!.files.create({
      file: await toFile(Buffer.from(jsonl(LINES)), 'in.jsonl'),
      purpose: 'batch',
    });
    const startedMs = Date.now();
    const batch = await clients[1]!.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    let done = batch;
    while (!['completed', 'failed', 'expired', 'cancelled'].includes(done.status)) {
      await new Promise((r) => setTimeout(r, 100));
      done = await clients[2]!.batches.retrieve(batch.id);
    }
    const elapsedMs = Date.now() - startedMs;
    const calls = sim.calls().filter((c) => c.path.endsWith('/chat/completions'));
    const limited = calls.filter((c) => c.status === 429).length;
    // The upstream admits one second's worth at once, then RPM / 60 per second.
    const minimumMs = ((LINES - RPM / 60) / (RPM / 60)) * 1_000;
    const firstCallMs = Math.min(...calls.map((c) => c.atMs));
    const lastCallMs = Math.max(...calls.map((c) => c.atMs));
    const sendingMs = lastCallMs - firstCallMs;
    const servedBy = await Promise.all(
      servers.map(async (s) => {
        const status = (await (
          await fetch(s.baseURL.replace(/\/v1$/, '/admin/scheduler'))
        ).json()) as {
          upstreams: { keys: { share: number }[] }[];
        };
        return status.upstreams[0]?.keys[0]?.share ?? null;
      }),
    );
    console.log(
      `[cluster limits] ${LINES} lines, ${PROCESSES} processes, ${RPM} RPM: ${(elapsedMs / 1000).toFixed(1)} s = ${(elapsedMs / minimumMs).toFixed(3)}× the minimum ${(minimumMs / 1000).toFixed(1)} s (first to last call ${(sendingMs / minimumMs).toFixed(3)}×; before the first ${((firstCallMs - startedMs) / 1000).toFixed(1)} s, after the last ${((startedMs + elapsedMs - lastCallMs) / 1000).toFixed(1)} s); ${limited} 429s of ${calls.length} calls (${((100 * limited) / calls.length).toFixed(2)}%); shares at the end ${servedBy.join(', ')}`,
    );
    expect(done.status).toBe('completed');
    expect(done.request_counts).toEqual({ total: LINES, completed: LINES, failed: 0 });
    expect(limited / calls.length).toBeLessThanOrEqual(0.02);
    // The whole batch (validating and finalizing its lines included), and the shared limit's own
    // efficiency: from the first call to the last.
    expect(elapsedMs).toBeLessThanOrEqual(1.1 * minimumMs);
    expect(sendingMs).toBeLessThanOrEqual(1.1 * minimumMs);
  }, 240_000);
});
