import { createReadStream } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  chatLine,
  readLines,
  startTestServer,
  waitForBatch,
  writeJsonl,
  type TestServer,
} from '../helpers/test-server.ts';
import type { SimBatchApiOptions } from '../../src/simulator/simulator.ts';

/** Issue 10: batches run on the upstream's own Batch API (the simulator's), split and staged. */

const NATIVE_ENV = {
  OPENBATCH_UPSTREAM_BATCH_MODE: 'native',
  OPENBATCH_UPSTREAM_BATCH_POLL_MS: '40',
  OPENBATCH_UPSTREAM_BATCH_MAX_POLL_MS: '150',
};

let server: TestServer | null = null;
afterEach(async () => {
  await server?.close();
  server = null;
});

async function start(batchApi: SimBatchApiOptions, env: Record<string, string> = {}) {
  server = await startTestServer({ sim: { batchApi }, env: { ...NATIVE_ENV, ...env } });
  return server;
}

async function submit(t: TestServer, lines: object[], window = '24h') {
  const file = await t.client.files.create({
    file: createReadStream(writeJsonl(lines)),
    purpose: 'batch',
  });
  return t.client.batches.create({
    input_file_id: file.id,
    endpoint: '/v1/chat/completions',
    completion_window: window as '24h',
  });
}

const realtimeCalls = (t: TestServer) =>
  t.sim.calls().filter((c) => c.path.endsWith('/chat/completions')).length;

/** Every created upstream batch carries a marker no other one carries (none created twice). */
function expectMarkersUnique(t: TestServer): void {
  const markers = t.sim.upstreamBatches().map((b) => b.metadata?.openbatch_sub);
  expect(markers.every((m) => typeof m === 'string')).toBe(true);
  expect(new Set(markers).size).toBe(markers.length);
}

describe('native batch passthrough', () => {
  it('stages 3,000 lines under an enqueued-token limit: every line once, in order, no real-time call', async () => {
    const t = await start({ turnaroundMs: 250, queueTokens: { 'gpt-4o-mini': 20_000 } });
    const lines = Array.from({ length: 3_000 }, (_, i) => chatLine(`l${i}`, `question ${i}`));
    const batch = await submit(t, lines);
    const done = await waitForBatch(t.client, batch.id, 120_000);
    expect(done.status).toBe('completed');
    expect(done.request_counts).toEqual({ total: 3_000, completed: 3_000, failed: 0 });
    expect(done.usage?.total_tokens).toBeGreaterThan(0);
    const out = await readLines(t.client, done.output_file_id);
    expect(out.map((l) => l.custom_id)).toEqual(lines.map((_, i) => `l${i}`));
    expect(out[0]?.response.body.object).toBe('chat.completion');
    expect(done.error_file_id).toBeNull();
    expect(realtimeCalls(t)).toBe(0);
    const upstream = t.sim.upstreamBatches();
    const ran = upstream.filter((b) => b.status === 'completed');
    expect(ran.length).toBeGreaterThanOrEqual(4);
    expect(ran.reduce((n, b) => n + b.lines, 0)).toBe(3_000);
    // The limit was learned from OpenAI's error, never counted as the user's failure.
    expect(upstream.some((b) => b.errorCodes.includes('token_limit_exceeded'))).toBe(true);
    expect(Math.max(...ran.map((b) => b.tokens))).toBeLessThanOrEqual(20_000);
    expectMarkersUnique(t);
    const execution = (done as unknown as { execution: Record<string, any> }).execution;
    expect(execution).toMatchObject({ mode: 'native', native_lines: 3_000 });
    // Every token ran at the batch price (what cost reporting charges at the discount).
    expect(execution.native_usage.total_tokens).toBe(done.usage?.total_tokens);
  });

  it('charges native lines at the batch price: the batch cost is half its standard price', async () => {
    server = await startTestServer({
      sim: { batchApi: { turnaroundMs: 100 } },
      configFile: {
        upstreams: [
          {
            name: 'sim',
            baseUrl: 'SIM/v1',
            batchMode: 'native',
            batchPollMs: 40,
            batchMaxPollMs: 150,
            pricing: { 'gpt-4o-mini': { input: 1000, output: 1000 } },
          },
        ],
      },
    });
    const lines = Array.from({ length: 40 }, (_, i) => chatLine(`p${i}`, `question ${i}`));
    const done = await waitForBatch(server.client, (await submit(server, lines)).id, 60_000);
    expect(done.request_counts).toEqual({ total: 40, completed: 40, failed: 0 });
    expect(realtimeCalls(server)).toBe(0);
    const cost = (done as unknown as { cost: { charged: number; at_standard_price: number } }).cost;
    expect(cost.at_standard_price).toBeGreaterThan(0);
    expect(cost.charged).toBeCloseTo(cost.at_standard_price / 2, 6);
  });

  it('splits a mixed-model batch per model (one model per sub-batch)', async () => {
    const t = await start({ turnaroundMs: 100 });
    const models = ['gpt-4o-mini', 'gpt-4o', 'sim-model'];
    const lines = Array.from({ length: 90 }, (_, i) => chatLine(`m${i}`, `q${i}`, models[i % 3]));
    const batch = await submit(t, lines);
    const done = await waitForBatch(t.client, batch.id, 60_000);
    expect(done.request_counts).toEqual({ total: 90, completed: 90, failed: 0 });
    const out = await readLines(t.client, done.output_file_id);
    expect(new Set(out.map((l) => l.custom_id)).size).toBe(90);
    for (const line of out) {
      const i = Number(String(line.custom_id).slice(1));
      expect(line.response.body.model).toBe(models[i % 3]);
    }
    const upstream = t.sim.upstreamBatches();
    expect(upstream.map((b) => b.model).sort()).toEqual([...models].sort());
    expect(upstream.every((b) => b.status === 'completed' && b.lines === 30)).toBe(true);
    expect(realtimeCalls(t)).toBe(0);
  });

  it('cancel mid-way: open sub-batches are cancelled upstream, partial results kept, the rest batch_cancelled', async () => {
    const t = await start({ turnaroundMs: 4_000 });
    const lines = Array.from({ length: 200 }, (_, i) => chatLine(`c${i}`, `q${i}`));
    const batch = await submit(t, lines);
    // Live progress of the open sub-batch shows on the batch before any result is merged.
    let progress: Record<string, number> | undefined;
    for (let i = 0; i < 400 && !((progress?.completed ?? 0) >= 20); i++) {
      await new Promise((r) => setTimeout(r, 25));
      const running = await t.client.batches.retrieve(batch.id);
      progress = (
        running as unknown as { execution?: { upstream_progress?: Record<string, number> } }
      ).execution?.upstream_progress;
    }
    expect(progress).toMatchObject({ sub_batches: 1, lines: 200, failed: 0 });
    expect(progress?.completed).toBeLessThan(200);
    await t.client.batches.cancel(batch.id);
    const done = await waitForBatch(t.client, batch.id, 60_000);
    expect(done.status).toBe('cancelled');
    const out = await readLines(t.client, done.output_file_id);
    const err = await readLines(t.client, done.error_file_id);
    expect(out.length).toBeGreaterThan(0);
    expect(out.length).toBeLessThan(200);
    expect(err.every((l) => l.error?.code === 'batch_cancelled')).toBe(true);
    const ids = [...out, ...err].map((l) => l.custom_id);
    expect(new Set(ids).size).toBe(200);
    expect(done.request_counts?.completed).toBe(out.length);
    expect(t.sim.upstreamBatches().every((b) => b.status === 'cancelled')).toBe(true);
    const ended = await t.client.batches.retrieve(batch.id);
    expect((ended as unknown as { execution: object }).execution).not.toHaveProperty(
      'upstream_progress',
    );
    expect(realtimeCalls(t)).toBe(0);
  });

  it('auto: lines whose sub-batch would miss the deadline are cancelled upstream and run real-time', async () => {
    // A 12 s window with a 9 s margin: native at first, at risk 3 s in; the upstream needs 60 s.
    const t = await start(
      { turnaroundMs: 60_000 },
      {
        OPENBATCH_UPSTREAM_BATCH_MODE: 'auto',
        OPENBATCH_UPSTREAM_BATCH_FALLBACK_MARGIN_MS: '9000',
      },
    );
    const lines = Array.from({ length: 40 }, (_, i) => chatLine(`f${i}`, `q${i}`));
    const batch = await submit(t, lines, '12s');
    const done = await waitForBatch(t.client, batch.id, 60_000);
    expect(done.status).toBe('completed');
    expect(done.request_counts).toEqual({ total: 40, completed: 40, failed: 0 });
    const out = await readLines(t.client, done.output_file_id);
    expect(new Set(out.map((l) => l.custom_id)).size).toBe(40);
    const upstream = t.sim.upstreamBatches();
    expect(upstream.length).toBe(1);
    expect(upstream[0]?.status).toBe('cancelled');
    const execution = (done as unknown as { execution: Record<string, unknown> }).execution;
    expect(execution.mode).toBe('native');
    const native = Number(execution.native_lines ?? 0);
    expect(Number(execution.fallback_lines)).toBe(40 - native);
    expect(realtimeCalls(t)).toBe(40 - native);
    expect(realtimeCalls(t)).toBeGreaterThan(0);
  });

  it('native: lines still upstream at the deadline expire as on OpenAI', async () => {
    const t = await start({ turnaroundMs: 60_000 });
    const lines = Array.from({ length: 20 }, (_, i) => chatLine(`e${i}`, `q${i}`));
    const batch = await submit(t, lines, '10s');
    const done = await waitForBatch(t.client, batch.id, 60_000);
    expect(done.status).toBe('expired');
    const err = await readLines(t.client, done.error_file_id);
    const out = await readLines(t.client, done.output_file_id);
    expect(out.length + err.length).toBe(20);
    expect(err.every((l) => l.error?.code === 'batch_expired')).toBe(true);
    expect(realtimeCalls(t)).toBe(0);
  });

  it('auto: an upstream without a Batch API (404, like vLLM) runs real-time', async () => {
    server = await startTestServer({ env: { OPENBATCH_UPSTREAM_BATCH_MODE: 'auto' } });
    const t = server;
    const lines = Array.from({ length: 10 }, (_, i) => chatLine(`r${i}`, `q${i}`));
    const batch = await submit(t, lines);
    const done = await waitForBatch(t.client, batch.id, 60_000);
    expect(done.request_counts).toEqual({ total: 10, completed: 10, failed: 0 });
    expect(realtimeCalls(t)).toBe(10);
    expect((done as unknown as { execution: unknown }).execution).toMatchObject({
      mode: 'realtime',
      reason: expect.stringContaining('no Batch API (GET /batches answered 404)'),
    });
  });
});
