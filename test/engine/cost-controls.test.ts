import { createReadStream } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  chatLine,
  readLines,
  startTestServer,
  waitForBatch,
  writeJsonl,
  type TestServer,
} from '../helpers/test-server.ts';

/** Issue 13: live cost on the batch, the spend cap, the canary and max_error_rate. */

// $1,000 per 1M tokens in and out: a line of ~20 tokens in and ≤ 50 out costs a few cents.
const PRICED = {
  upstreams: [
    {
      name: 'sim',
      baseUrl: 'SIM/v1',
      maxConcurrency: 8,
      pricing: { 'gpt-4o-mini': { input: 1000, output: 1000 } },
    },
  ],
};

async function submit(t: TestServer, lines: object[], extra: Record<string, unknown> = {}) {
  const path = writeJsonl(lines);
  const file = await t.client.files.create({ file: createReadStream(path), purpose: 'batch' });
  return t.client.batches.create({
    input_file_id: file.id,
    endpoint: '/v1/chat/completions',
    completion_window: '24h',
    ...extra,
  });
}

type CostBatch = { cost?: { currency: string; charged: number; at_standard_price: number } };

describe('cost controls', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ configFile: PRICED, sim: { latencyMs: 5 } });
  });
  afterAll(async () => t.close());

  it('prices every answer from the upstream pricing table and shows it on the batch', async () => {
    const created = await submit(t, [chatLine('a', 'price me'), chatLine('b', 'price me too')]);
    expect((created as CostBatch).cost).toEqual({
      currency: 'usd',
      charged: 0,
      at_standard_price: 0,
    });
    const done = await waitForBatch(t.client, created.id);
    const usage = done.usage!;
    const expected = (usage.input_tokens + usage.output_tokens) * 0.001;
    expect(usage.output_tokens).toBeGreaterThan(0);
    expect((done as CostBatch).cost!.charged).toBeCloseTo(expected, 6);
    expect((done as CostBatch).cost!.at_standard_price).toBeCloseTo(expected, 6);
    const metrics = await (await fetch(t.baseURL.replace(/\/v1$/, '/metrics'))).text();
    const charged =
      /openbatch_cost_usd_total\{upstream="sim",model="gpt-4o-mini",price="charged"\} ([\d.e-]+)/.exec(
        metrics,
      );
    expect(Number(charged?.[1])).toBeCloseTo(expected, 6);
  });

  it('stops a 2,000-line batch at max_cost_usd: ~150 lines sent, the rest spend_limit_reached, each line once', async () => {
    // One line's real cost first, from a run without a cap.
    const probe = await waitForBatch(t.client, (await submit(t, [chatLine('p', 'line 0')])).id);
    const perLine = (probe as CostBatch).cost!.charged;
    expect(perLine).toBeGreaterThan(0);
    t.sim.reset();
    const lines = Array.from({ length: 2_000 }, (_, i) => chatLine(`l-${i}`, `line ${i}`));
    const created = await submit(t, lines, { max_cost_usd: perLine * 150 });
    expect((created as { max_cost_usd?: number }).max_cost_usd).toBeCloseTo(perLine * 150, 9);
    const done = await waitForBatch(t.client, created.id, 60_000);
    expect(done.status).toBe('cancelled');
    expect(done.errors?.data?.[0]?.code).toBe('spend_limit_reached');
    const calls = t.sim.calls().filter((c) => c.path.endsWith('/chat/completions')).length;
    const output = await readLines(t.client, done.output_file_id);
    const errors = await readLines(t.client, done.error_file_id);
    // The cap is never passed (a line's bound is at least its cost), and in-flight lines finish.
    expect(calls).toBeLessThanOrEqual(150 + 8);
    expect(calls).toBeGreaterThan(50);
    expect(output.length).toBe(calls);
    expect((done as CostBatch).cost!.charged).toBeLessThanOrEqual(perLine * 150 * 1.0001);
    const skipped = errors.filter((l) => l.error?.code === 'spend_limit_reached');
    expect(skipped.length).toBe(2_000 - output.length);
    const ids = [...output, ...errors].map((l) => l.custom_id as string);
    expect(ids.length).toBe(2_000);
    expect(new Set(ids).size).toBe(2_000);
    expect(done.request_counts).toMatchObject({ total: 2_000, completed: output.length });
  }, 90_000);

  it('stops a batch early when its first lines all fail with the same 404', async () => {
    t.sim.reset();
    const lines = Array.from({ length: 300 }, (_, i) =>
      chatLine(`m-${i}`, `no such model [sim:status=404;id=m-${i}]`),
    );
    const done = await waitForBatch(t.client, (await submit(t, lines)).id, 30_000);
    expect(done.status).toBe('cancelled');
    expect(done.errors?.data?.[0]?.message).toMatch(/first 10 lines all failed/);
    const calls = t.sim.calls().length;
    expect(calls).toBeLessThan(300 / 4);
    const errors = await readLines(t.client, done.error_file_id);
    expect(new Set(errors.map((l) => l.custom_id)).size).toBe(300);
    expect(errors.filter((l) => l.error?.code === 'error_rate_exceeded').length).toBe(300 - calls);
  });

  it('max_error_rate stops a batch whose failed share passes it; a healthy batch is not stopped', async () => {
    t.sim.reset();
    const mixed = Array.from({ length: 200 }, (_, i) =>
      i % 2 === 0
        ? chatLine(`x-${i}`, `bad [sim:status=400;id=x-${i}]`)
        : chatLine(`x-${i}`, `ok ${i}`),
    );
    const stopped = await waitForBatch(
      t.client,
      (await submit(t, mixed, { max_error_rate: 0.2 })).id,
      30_000,
    );
    expect(stopped.status).toBe('cancelled');
    expect(stopped.errors?.data?.[0]?.code).toBe('error_rate_exceeded');
    const healthy = await waitForBatch(
      t.client,
      (await submit(t, mixed.slice(0, 40), { max_error_rate: 0.9 })).id,
      30_000,
    );
    expect(healthy.status).toBe('completed');
    // max_error_rate 1 replaces the canary: 30 lines all failing alike all run.
    const all404 = Array.from({ length: 30 }, (_, i) =>
      chatLine(`n-${i}`, `no model [sim:status=404;id=n-${i}]`),
    );
    const ran = await waitForBatch(
      t.client,
      (await submit(t, all404, { max_error_rate: 1 })).id,
      30_000,
    );
    expect(ran.status).toBe('completed');
    expect(ran.request_counts).toMatchObject({ total: 30, failed: 30 });
  });

  it('refuses a max_cost_usd that is not a positive number', async () => {
    await expect(submit(t, [chatLine('z', 'z')], { max_cost_usd: -1 })).rejects.toMatchObject({
      status: 400,
      param: 'max_cost_usd',
    });
  });
});

describe('a project spend cap from the config', () => {
  let t: TestServer;
  beforeAll(async () => {
    // ~20 tokens in and ≤ 50 out at $1,000 per 1M: a line costs well under $0.07.
    t = await startTestServer({
      configFile: { ...PRICED, projects: { default: { maxCostUsd: 1 } } },
      sim: { latencyMs: 5 },
    });
  });
  afterAll(async () => t.close());

  it('caps a batch without max_cost_usd, and a larger max_cost_usd does not lift it', async () => {
    const lines = Array.from({ length: 300 }, (_, i) => chatLine(`p-${i}`, `project line ${i}`));
    const done = await waitForBatch(t.client, (await submit(t, lines, { max_cost_usd: 100 })).id);
    expect(done.status).toBe('cancelled');
    expect(done.errors?.data?.[0]?.code).toBe('spend_limit_reached');
    expect((done as CostBatch).cost!.charged).toBeLessThanOrEqual(1);
    expect((done as CostBatch).cost!.charged).toBeGreaterThan(0.5);
    expect(done.request_counts!.completed).toBeLessThan(300);
  });
});
