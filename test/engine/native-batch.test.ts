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
    expect((done as unknown as { execution: unknown }).execution).toMatchObject({
      mode: 'native',
      native_lines: 3_000,
    });
  });
});
