import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSimulator, type Simulator } from '../../src/simulator/simulator.ts';
import { spawnServer, type ServerProcess } from '../helpers/server-process.ts';
import { chatLine, readLines, waitForBatch, writeJsonl } from '../helpers/test-server.ts';

/**
 * Issue 10 crash safety: kill -9 while a sub-batch's create is in flight (the upstream made it,
 * the answer never came back), while sub-batches are polled, and while results are downloaded
 * for merging; after each restart no sub-batch is created twice and every line ends exactly once.
 */

const LINES = 600;

async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not reached in ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function kill(server: ServerProcess): Promise<void> {
  server.child.kill('SIGKILL');
  await server.exited;
}

describe('native passthrough: kill -9 and restart', () => {
  let sim: Simulator;
  let simUrl: string;
  const dataDir = mkdtempSync(join(tmpdir(), 'openbatch-native-restart-'));
  beforeAll(async () => {
    sim = createSimulator({
      batchApi: {
        turnaroundMs: 1_500,
        queueTokens: { 'gpt-4o-mini': 6_000 },
        createLatencyMs: 1_000,
        contentLatencyMs: 1_000,
      },
    });
    simUrl = (await sim.listen(0)).url;
  });
  afterAll(async () => {
    await sim.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('during submission, polling and merging: no sub-batch created twice, nothing lost', async () => {
    const env = {
      OPENBATCH_UPSTREAM_URL: `${simUrl}/v1`,
      OPENBATCH_TICK_MS: '50',
      OPENBATCH_UPSTREAM_BATCH_MODE: 'native',
      OPENBATCH_UPSTREAM_BATCH_POLL_MS: '50',
      OPENBATCH_UPSTREAM_BATCH_MAX_POLL_MS: '200',
    };
    const calls = (prefix: string) => sim.calls().filter((c) => c.path.startsWith(prefix)).length;
    let server = await spawnServer(dataDir, env);
    let client = new OpenAI({ apiKey: 'k', baseURL: server.baseURL, maxRetries: 0 });
    const ids = Array.from({ length: LINES }, (_, i) => `n${i}`);
    const path = writeJsonl(ids.map((id) => chatLine(id, `question ${id}`)));
    const file = await client.files.create({ file: createReadStream(path), purpose: 'batch' });
    const batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });

    // 1. Submission: the create reached the upstream (which made the batch); its answer has not.
    await waitUntil(() => calls('POST /v1/batches') >= 1, 30_000, 'first create');
    await kill(server);
    const createdAtKill = sim.upstreamBatches().length;
    expect(createdAtKill).toBe(1);

    // 2. Polling: a sub-batch runs upstream while the server dies.
    server = await spawnServer(dataDir, env);
    await waitUntil(
      () => sim.upstreamBatches().some((b) => b.status === 'in_progress'),
      30_000,
      'a sub-batch in progress',
    );
    await kill(server);

    // 3. Merging: a finished sub-batch's results are being downloaded.
    server = await spawnServer(dataDir, env);
    const contentBefore = calls('GET /v1/files/');
    await waitUntil(
      () =>
        sim.calls().some((c, i) => i >= 0 && c.path.endsWith('/content')) &&
        calls('GET /v1/files/') > contentBefore,
      60_000,
      'a result download',
    );
    await kill(server);

    server = await spawnServer(dataDir, env);
    try {
      client = new OpenAI({ apiKey: 'k', baseURL: server.baseURL, maxRetries: 0 });
      const done = await waitForBatch(client, batch.id, 120_000);
      expect(done.status).toBe('completed');
      expect(done.request_counts).toEqual({ total: LINES, completed: LINES, failed: 0 });
      const out = await readLines(client, done.output_file_id);
      expect(out.map((l) => l.custom_id).sort()).toEqual([...ids].sort());
      expect(done.error_file_id).toBeNull();
      const upstream = sim.upstreamBatches();
      const markers = upstream.map((b) => b.metadata?.openbatch_sub);
      expect(new Set(markers).size).toBe(markers.length); // no sub-batch created twice
      const ran = upstream.filter((b) => b.status === 'completed');
      expect(ran.length).toBeGreaterThanOrEqual(4);
      // A line ran upstream once (a sub-batch's lines are never handed to a second one).
      expect(ran.reduce((n, b) => n + b.lines, 0)).toBe(LINES);
      expect(sim.calls().filter((c) => c.path.endsWith('/chat/completions'))).toHaveLength(0);
    } finally {
      await kill(server);
    }
  });
});
