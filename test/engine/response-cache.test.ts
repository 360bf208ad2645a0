import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  readLines,
  startTestServer,
  waitForBatch,
  writeJsonl,
  type TestServer,
} from '../helpers/test-server.ts';
import { createSimulator, type Simulator } from '../../src/simulator/simulator.ts';

/** Issue 13: the response cache (OPENBATCH_CACHE=on), single-flight, persistence, projects. */

const KEY_A = 'project-a-key-0123456789';
const KEY_B = 'project-b-key-0123456789';

function line(customId: string, question: number, temperature = 0): object {
  return {
    custom_id: customId,
    method: 'POST',
    url: '/v1/chat/completions',
    body: {
      model: 'gpt-4o-mini',
      temperature,
      max_tokens: 20,
      messages: [{ role: 'user', content: `question ${question}` }],
    },
  };
}

/** 400 lines: 200 distinct requests, each twice (the copies 200 lines apart). */
const TWICE = Array.from({ length: 400 }, (_, i) => line(`q-${i}`, i % 200));

async function run(client: OpenAI, lines: object[]) {
  const path = writeJsonl(lines);
  const file = await client.files.create({ file: createReadStream(path), purpose: 'batch' });
  const batch = await client.batches.create({
    input_file_id: file.id,
    endpoint: '/v1/chat/completions',
    completion_window: '24h',
  });
  return waitForBatch(client, batch.id, 60_000);
}

const CONFIG = {
  upstreams: [
    {
      name: 'sim',
      baseUrl: 'SIM/v1',
      maxConcurrency: 32,
      pricing: { '*': { input: 1000, output: 1000 } },
    },
  ],
};

const chatCalls = (t: TestServer): number =>
  t.sim.calls().filter((c) => c.path.endsWith('/chat/completions')).length;

type CachedBatch = { cache_hits?: number; cost?: { charged: number } };

describe('response cache', () => {
  let t: TestServer;
  let sim: Simulator;
  let simUrl: string;
  const dataDir = mkdtempSync(join(tmpdir(), 'openbatch-cache-'));
  beforeAll(async () => {
    sim = createSimulator({ latencyMs: 20 });
    simUrl = (await sim.listen(0)).url;
    t = await startTestServer({
      env: { OPENBATCH_CACHE: 'on', OPENBATCH_API_KEYS: `${KEY_A}:a,${KEY_B}:b`, SIM_URL: simUrl },
      apiKey: KEY_A,
      dataDir,
      existingSim: sim,
      configFile: CONFIG,
    });
  });
  afterAll(async () => {
    await t.close();
    await sim.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('answers 400 lines that are 200 requests twice with at most 200 upstream calls; the same batch again costs none', async () => {
    t.sim.reset();
    const first = await run(t.client, TWICE);
    expect(first.status).toBe('completed');
    expect(first.request_counts).toMatchObject({ total: 400, completed: 400 });
    expect(chatCalls(t)).toBeLessThanOrEqual(200);
    expect((first as CachedBatch).cache_hits).toBe(400 - chatCalls(t));
    const output = await readLines(t.client, first.output_file_id);
    // A copy's answer is its twin's, marked as cached.
    const byId = new Map(output.map((l) => [l.custom_id as string, l]));
    const twin = byId.get('q-7')!.response.body.choices[0].message.content;
    expect(byId.get('q-207')!.response.body.choices[0].message.content).toBe(twin);
    expect(output.filter((l) => l.cached === true).length).toBe((first as CachedBatch).cache_hits);

    t.sim.reset();
    const again = await run(t.client, TWICE);
    expect(again.request_counts).toMatchObject({ total: 400, completed: 400 });
    expect(chatCalls(t)).toBe(0);
    expect((again as CachedBatch).cache_hits).toBe(400);
    expect((again as CachedBatch).cost!.charged).toBe(0);
    expect((first as CachedBatch).cost!.charged).toBeGreaterThan(0);
  }, 90_000);

  it('sends identical lines in flight at once as one call (single-flight)', async () => {
    t.sim.reset();
    // Neighbours are identical: both are claimed and admitted together.
    const pairs = Array.from({ length: 100 }, (_, i) => line(`p-${i}`, 5_000 + Math.floor(i / 2)));
    const done = await run(t.client, pairs);
    expect(done.request_counts).toMatchObject({ total: 100, completed: 100 });
    expect(chatCalls(t)).toBe(50);
    expect((done as CachedBatch).cache_hits).toBe(50);
  });

  it('keeps answers across a restart', async () => {
    const lines = TWICE.slice(0, 20);
    await run(t.client, lines);
    await t.close();
    t = await startTestServer({
      env: { OPENBATCH_CACHE: 'on', OPENBATCH_API_KEYS: `${KEY_A}:a,${KEY_B}:b`, SIM_URL: simUrl },
      apiKey: KEY_A,
      dataDir,
      existingSim: t.sim,
      configFile: CONFIG,
    });
    t.sim.reset();
    const after = await run(t.client, lines);
    expect(after.request_counts).toMatchObject({ total: 20, completed: 20 });
    expect(chatCalls(t)).toBe(0);
  });

  it('never answers one project from another project’s cache', async () => {
    t.sim.reset();
    const lines = TWICE.slice(0, 50); // cached for project a by the test above
    const inB = await run(t.clientWithKey(KEY_B), lines);
    expect(inB.status).toBe('completed');
    expect(chatCalls(t)).toBe(50);
    expect((inB as CachedBatch).cache_hits).toBe(0);
  });

  it('does not cache a request whose answer may vary (temperature above 0, no seed)', async () => {
    t.sim.reset();
    const varying = [line('v-1', 9_001, 0.7), line('v-2', 9_001, 0.7)];
    await run(t.client, varying);
    await run(t.client, varying);
    expect(chatCalls(t)).toBe(4);
  });
});
