import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatUsageTable, runBatch, type BatchRequest } from '../../src/sdk/index.ts';
import { addUsage, emptyUsage, usageFromResponse } from '../../src/protocol/token-usage.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

const chat = (content: string, extra: Record<string, unknown> = {}) => ({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content }],
  max_completion_tokens: 32,
  ...extra,
});

describe('runBatch against an openbatch server', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ env: { OPENBATCH_MAX_ATTEMPTS: '2' } });
  });
  afterAll(async () => t.close());

  it('returns 1,000 mixed outcomes in input order, with usage and cost equal to the sum over lines', async () => {
    const outcome = (i: number): 'bad' | 'down' | 'ok' =>
      i % 10 === 3 ? 'bad' : i % 25 === 7 ? 'down' : 'ok';
    const directive = { bad: ' [sim:status=400]', down: ' [sim:status=500]', ok: '' };
    const requests: BatchRequest[] = Array.from({ length: 1_000 }, (_, i) => {
      const body = chat(`Summarise item ${i}${directive[outcome(i)]}`);
      // Half bare bodies (ids assigned by position), half full lines with their own ids.
      return i % 2 === 0 ? body : { custom_id: `q-${i}`, body };
    });
    const progress: number[] = [];
    const run = await runBatch(requests, {
      baseURL: t.baseURL,
      apiKey: 'test-key',
      pollIntervalMs: 100,
      onProgress: (s) => progress.push(s.counts.completed + s.counts.failed),
    });

    expect(run.results.map((r) => r.custom_id)).toEqual(
      requests.map((_, i) => (i % 2 === 0 ? `request-${i}` : `q-${i}`)),
    );
    run.results.forEach((r, i) => {
      const kind = outcome(i);
      if (kind === 'ok') expect(r.response?.status_code).toBe(200);
      if (kind === 'bad') expect(r.response?.status_code).toBe(400);
      if (kind === 'down') expect(r.response?.status_code ?? 0).not.toBe(200);
    });
    const ok = run.results.filter((_, i) => outcome(i) === 'ok').length;
    expect(run.counts).toMatchObject({ total: 1_000, completed: ok, failed: 1_000 - ok });
    expect(progress.at(-1)).toBe(1_000);

    const sum = run.results.reduce(
      (u, r) => addUsage(u, usageFromResponse(r.response?.body) ?? emptyUsage()),
      emptyUsage(),
    );
    expect(sum.total_tokens).toBeGreaterThan(0);
    expect(run.usage).toEqual(sum);
    const rows = Object.fromEntries(run.table.rows.map((r) => [r.category, r]));
    expect(rows['Prompt']!.tokens + rows['Cached prompt']!.tokens).toBe(sum.input_tokens);
    expect(rows['Completion']!.tokens).toBe(sum.output_tokens);
    expect(rows['Total']!.tokens).toBe(sum.total_tokens);
    expect(run.table.standardUsd).toBeGreaterThan(0);
    expect(run.table.batchUsd).toBeCloseTo(run.table.standardUsd / 2, 12);
  });

  it('runs the OpenaiBatchAPI flow: 14 "Calculate 1 + i" messages, batch size 2 → 7 batches, results by id', async () => {
    const messages: BatchRequest[] = [];
    for (let i = 0; i < 7; i++) {
      const body = chat(`Calculate:  1 + ${i} = `, { temperature: 0, seed: 42 });
      messages.push({ custom_id: `calc_${i}`, body });
    }
    for (let i = 0; i < 7; i++)
      messages.push(chat(`Calculate:  1 + ${i} = `, { temperature: 0, seed: 42 }));

    const run = await runBatch(messages, {
      baseURL: t.baseURL,
      apiKey: 'test-key',
      batchSize: 2,
      pollIntervalMs: 100,
    });

    expect(run.batches).toHaveLength(7);
    expect(new Set(run.batches.map((b) => b.id)).size).toBe(7);
    expect(run.batches.every((b) => b.lines === 2 && b.status === 'completed')).toBe(true);
    const byId = new Map(run.results.map((r) => [r.custom_id, r]));
    for (let i = 0; i < 7; i++) {
      const answer = byId.get(`calc_${i}`)?.response?.body as {
        choices: { message: { content: string } }[];
      };
      expect(answer.choices[0]!.message.content).toContain(`1 + ${i}`);
      expect(byId.get(`request-${7 + i}`)?.response?.status_code).toBe(200);
    }
    const text = formatUsageTable(run.table, { digits: 8 });
    expect(text).toMatch(/\| Prompt +\| +[\d,]+ \| +\$\d+\.\d{8} \| +\$\d+\.\d{8} \|/);
    expect(text).toMatch(/\| Completion /);
    expect(text).toContain(`| Total `);
    expect(text).toContain(run.usage.total_tokens.toLocaleString('en-US'));
  });
});
