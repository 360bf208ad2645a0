import { toFile } from 'openai';
import type OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { withSim } from './sim-helpers.ts';

const line = (id: string, content: string, model = 'gpt-4o-mini'): string =>
  JSON.stringify({
    custom_id: id,
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model, messages: [{ role: 'user', content }], max_tokens: 20 },
  });

async function upload(client: OpenAI, lines: string[]): Promise<string> {
  const file = await client.files.create({
    file: await toFile(Buffer.from(lines.join('\n') + '\n'), 'in.jsonl'),
    purpose: 'batch',
  });
  return file.id;
}

async function waitStatus(client: OpenAI, id: string, done: string[]): Promise<OpenAI.Batch> {
  for (let i = 0; i < 200; i++) {
    const batch = await client.batches.retrieve(id);
    if (done.includes(batch.status)) return batch;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`batch ${id} never reached ${done.join('/')}`);
}

async function lines(client: OpenAI, fileId: string | null | undefined): Promise<any[]> {
  if (!fileId) return [];
  const text = await (await client.files.content(fileId)).text();
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

describe('simulator Batch API', () => {
  it('runs an uploaded file as a batch through the SDK: output and error lines, counts, usage', async () => {
    await withSim({ batchApi: { turnaroundMs: 100 } }, async ({ client }) => {
      const fileId = await upload(client, [line('a', 'hello'), line('b', 'x [sim:status=400]')]);
      const created = await client.batches.create({
        input_file_id: fileId,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
        metadata: { openbatch_sub: 'm1' },
      });
      expect(created.status).toBe('validating');
      const done = await waitStatus(client, created.id, ['completed']);
      expect(done.request_counts).toEqual({ total: 2, completed: 1, failed: 1 });
      expect(done.usage?.total_tokens).toBeGreaterThan(0);
      const out = await lines(client, done.output_file_id);
      const err = await lines(client, done.error_file_id);
      expect(out.map((l) => l.custom_id)).toEqual(['a']);
      expect(out[0].response.body.object).toBe('chat.completion');
      expect(err[0]).toMatchObject({ custom_id: 'b', response: { status_code: 400 } });
      const list = await client.batches.list({ limit: 1 });
      expect(list.data[0]?.metadata).toEqual({ openbatch_sub: 'm1' });
    });
  });

  it("fails a batch over the enqueued-token limit with OpenAI's token_limit_exceeded", async () => {
    await withSim(
      { batchApi: { turnaroundMs: 5_000, queueTokens: { 'gpt-4o': 100 } } },
      async ({ client }) => {
        const small = await upload(client, [line('a', 'short', 'gpt-4o')]);
        const big = await upload(client, [line('b', 'x'.repeat(800), 'gpt-4o')]);
        const params = {
          endpoint: '/v1/chat/completions' as const,
          completion_window: '24h' as const,
        };
        const first = await client.batches.create({ input_file_id: small, ...params });
        await waitStatus(client, first.id, ['in_progress']);
        const second = await client.batches.create({ input_file_id: big, ...params });
        const failed = await waitStatus(client, second.id, ['failed']);
        expect(failed.errors?.data?.[0]).toMatchObject({
          code: 'token_limit_exceeded',
          line: null,
          param: null,
          message: expect.stringMatching(
            /^Enqueued token limit reached for gpt-4o in organization org-sim\. Limit: 100 enqueued tokens\./,
          ),
        });
      },
    );
  });

  it('keeps partial results when cancelled, and rejects mixed models', async () => {
    await withSim({ batchApi: { turnaroundMs: 2_000 } }, async ({ client, sim }) => {
      const fileId = await upload(
        client,
        Array.from({ length: 50 }, (_, i) => line(`l${i}`, `q${i}`)),
      );
      const batch = await client.batches.create({
        input_file_id: fileId,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      });
      await waitStatus(client, batch.id, ['in_progress']);
      await new Promise((r) => setTimeout(r, 600));
      const cancelling = await client.batches.cancel(batch.id);
      expect(['cancelling', 'cancelled']).toContain(cancelling.status);
      const cancelled = await waitStatus(client, batch.id, ['cancelled']);
      const out = await lines(client, cancelled.output_file_id);
      expect(out.length).toBeGreaterThan(0);
      expect(out.length).toBeLessThan(50);
      expect(cancelled.request_counts?.completed).toBe(out.length);
      const mixed = await upload(client, [line('a', 'x'), line('b', 'y', 'gpt-4o')]);
      const bad = await client.batches.create({
        input_file_id: mixed,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      });
      const failed = await waitStatus(client, bad.id, ['failed']);
      expect(failed.errors?.data?.[0]).toMatchObject({ code: 'mismatched_model', line: 2 });
      expect(sim.calls().some((c) => c.path === '/v1/chat/completions')).toBe(false);
      expect(sim.upstreamBatches()).toHaveLength(2);
    });
  });

  it('answers 404 on /v1/batches when the Batch API is off (vLLM-like)', async () => {
    await withSim({}, async ({ url }) => {
      const res = await fetch(`${url}/v1/batches?limit=1`);
      expect(res.status).toBe(404);
    });
  });
});
