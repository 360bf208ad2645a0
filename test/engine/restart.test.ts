import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSimulator, type Simulator } from '../../src/simulator/simulator.ts';
import { spawnServer } from '../helpers/server-process.ts';
import { dbPath, leasedLines, recordedIds, undoneLines } from '../helpers/store-peek.ts';
import { chatLine, readLines, waitForBatch, writeJsonl } from '../helpers/test-server.ts';

const LINES = 2_000;
const CONCURRENCY = 64;

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Uploads one chat line per id, creates the batch and waits until `completed` lines are done. */
async function startAndRunUntil(client: OpenAI, ids: string[], completed: number) {
  const path = writeJsonl(ids.map((id) => chatLine(id, `[sim:id=${id}] text`)));
  const file = await client.files.create({ file: createReadStream(path), purpose: 'batch' });
  const batch = await client.batches.create({
    input_file_id: file.id,
    endpoint: '/v1/chat/completions',
    completion_window: '24h',
  });
  await waitUntil(
    async () => (await client.batches.retrieve(batch.id)).request_counts!.completed >= completed,
    60_000,
  );
  return batch;
}

describe('restart after kill -9 in the middle of a batch', () => {
  let sim: Simulator;
  let simUrl: string;
  const dataDir = mkdtempSync(join(tmpdir(), 'openbatch-restart-'));
  beforeAll(async () => {
    sim = createSimulator({ latencyMs: 110, latencyJitterMs: 90, seed: 3 });
    simUrl = (await sim.listen(0)).url;
  });
  afterAll(async () => {
    await sim.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('completes with every custom_id exactly once and never re-sends a recorded line', async () => {
    const env = {
      OPENBATCH_UPSTREAM_URL: `${simUrl}/v1`,
      OPENBATCH_TICK_MS: '50',
      OPENBATCH_UPSTREAM_MAX_CONCURRENCY: String(CONCURRENCY),
    };
    const ids = Array.from({ length: LINES }, (_, i) => `line-${i}`);
    const first = await spawnServer(dataDir, env);
    let client = new OpenAI({ apiKey: 'k', baseURL: first.baseURL, maxRetries: 0 });
    const batch = await startAndRunUntil(client, ids, 400);

    first.child.kill('SIGKILL');
    await first.exited;
    const callsAtKill = sim.calls().length;
    // Recorded: committed to the batch's spools. Leased: lines of leased chunks not done, i.e.
    // sent or claimed with no recorded outcome, the only lines that may be paid for twice.
    const recorded = recordedIds(dataDir, batch.id);
    const leasedAtKill = new Set(leasedLines(dataDir, batch.id).map((l) => l.custom_id));
    expect(recorded.size).toBeGreaterThan(0);
    expect(recorded.size).toBeLessThan(LINES);

    const second = await spawnServer(dataDir, env);
    try {
      client = new OpenAI({ apiKey: 'k', baseURL: second.baseURL, maxRetries: 0 });
      const done = await waitForBatch(client, batch.id, 90_000);
      expect(done.status).toBe('completed');
      expect(done.request_counts).toEqual({ total: LINES, completed: LINES, failed: 0 });
      const lines = [
        ...(await readLines(client, done.output_file_id)),
        ...(await readLines(client, done.error_file_id)),
      ];
      const seen = lines.map((l) => l.custom_id as string);
      expect(seen.length).toBe(LINES);
      expect(new Set(seen)).toEqual(new Set(ids));

      const idOf = (marker: string | null | undefined) =>
        /id=([^;\]]+)/.exec(marker ?? '')?.[1] ?? '';
      const resent = sim
        .calls()
        .slice(callsAtKill)
        .map((c) => idOf(c.marker))
        .filter((id) => recorded.has(id));
      expect(resent).toEqual([]);
      // Paid twice: answered 2xx before the kill and again after it. Only lines whose lease was
      // held without a recorded outcome (in flight, or answered but not yet group-committed) can be.
      const paidBefore = new Set(
        sim
          .calls()
          .slice(0, callsAtKill)
          .filter((c) => c.status === 200)
          .map((c) => idOf(c.marker)),
      );
      const paidTwice = sim
        .calls()
        .slice(callsAtKill)
        .filter((c) => c.status === 200 && paidBefore.has(idOf(c.marker)));
      expect(paidTwice.every((c) => leasedAtKill.has(idOf(c.marker)))).toBe(true);
      expect(paidTwice.length).toBeLessThanOrEqual(leasedAtKill.size);
    } finally {
      second.child.kill('SIGTERM');
      expect(await second.exited).toBe(0);
    }
  }, 180_000);

  it('resumes a started batch whose items were still being released when it died', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'openbatch-restart-pending-'));
    const env = { OPENBATCH_UPSTREAM_URL: `${simUrl}/v1`, OPENBATCH_TICK_MS: '50' };
    const ids = Array.from({ length: 300 }, (_, i) => `p-${i}`);
    const first = await spawnServer(dir, { ...env, OPENBATCH_UPSTREAM_MAX_CONCURRENCY: '4' });
    let client = new OpenAI({ apiKey: 'k', baseURL: first.baseURL, maxRetries: 0 });
    const batch = await startAndRunUntil(client, ids, 10);
    first.child.kill('SIGKILL');
    await first.exited;
    // As if the process died between two releases of chunks: the batch is in_progress, yet most
    // of its lines are still pending (never claimable until something releases them).
    const db = new Database(dbPath(dir));
    const repended = db.prepare(`UPDATE chunks SET state = 'pending' WHERE state = 'queued'`).run();
    db.close();
    expect(repended.changes).toBeGreaterThan(0);
    expect(undoneLines(dir, batch.id, ['pending'])).toBeGreaterThan(100);

    const second = await spawnServer(dir, { ...env, OPENBATCH_UPSTREAM_MAX_CONCURRENCY: '64' });
    try {
      client = new OpenAI({ apiKey: 'k', baseURL: second.baseURL, maxRetries: 0 });
      const done = await waitForBatch(client, batch.id, 60_000);
      expect(done.status).toBe('completed');
      const seen = (await readLines(client, done.output_file_id)).map((l) => l.custom_id);
      expect(seen.sort()).toEqual([...ids].sort());
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
