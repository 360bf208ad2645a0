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

describe('the seed Node.js workflow against openbatch', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(async () => t.close());

  it('uploads, creates, polls and downloads a chat batch, matching every custom_id', async () => {
    const ids = Array.from({ length: 20 }, (_, i) => `request-${i + 1}`);
    const path = writeJsonl(ids.map((id) => chatLine(id, `Summarise document ${id}`)));
    const file = await t.client.files.create({ file: createReadStream(path), purpose: 'batch' });
    expect(file).toMatchObject({
      object: 'file',
      purpose: 'batch',
      status: 'processed',
      filename: 'input.jsonl',
    });
    expect(file.id).toMatch(/^file-[A-Za-z0-9]{22}$/);
    const batch = await t.client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
      metadata: { job: 'seed' },
    });
    expect(batch.status).toBe('validating');
    expect(batch.id).toMatch(/^batch_[0-9a-f]{12}8190[0-9a-f]{16}$/);
    expect(batch.expires_at).toBe(batch.created_at + 86_400);
    const done = await waitForBatch(t.client, batch.id);
    expect(done.status).toBe('completed');
    expect(done.request_counts).toEqual({ total: 20, completed: 20, failed: 0 });
    expect(done.model).toBe('gpt-4o-mini');
    expect(done.error_file_id).toBeNull();
    expect(done.metadata).toEqual({ job: 'seed' });
    expect(done.usage?.total_tokens).toBeGreaterThan(0);
    const lines = await readLines(t.client, done.output_file_id);
    expect(lines.map((l) => l.custom_id).sort()).toEqual([...ids].sort());
    for (const line of lines) {
      expect(line.id).toMatch(/^batch_req_/);
      expect(line.response.status_code).toBe(200);
      expect(line.response.body.object).toBe('chat.completion');
      expect(line.error).toBeNull();
    }
    const usage = lines.reduce((n, l) => n + l.response.body.usage.total_tokens, 0);
    expect(done.usage?.total_tokens).toBe(usage);
  });

  it('runs an embeddings batch', async () => {
    const path = writeJsonl(
      ['a', 'b', 'c'].map((x) => ({
        custom_id: `emb-${x}`,
        method: 'POST',
        url: '/v1/embeddings',
        body: { model: 'text-embedding-3-small', input: `text ${x}` },
      })),
    );
    const file = await t.client.files.create({ file: createReadStream(path), purpose: 'batch' });
    const batch = await t.client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/embeddings',
      completion_window: '24h',
    });
    const done = await waitForBatch(t.client, batch.id);
    expect(done.status).toBe('completed');
    const lines = await readLines(t.client, done.output_file_id);
    expect(lines.map((l) => l.custom_id).sort()).toEqual(['emb-a', 'emb-b', 'emb-c']);
    expect(lines[0]!.response.body.data[0].embedding.length).toBeGreaterThan(0);
  });

  it('runs a mixed-model batch and reports model null', async () => {
    const path = writeJsonl([
      chatLine('m1', 'one', 'gpt-4o-mini'),
      chatLine('m2', 'two', 'gpt-4o'),
    ]);
    const file = await t.client.files.create({ file: createReadStream(path), purpose: 'batch' });
    const batch = await t.client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    const done = await waitForBatch(t.client, batch.id);
    expect(done.status).toBe('completed');
    expect(done.model).toBeNull();
    const lines = await readLines(t.client, done.output_file_id);
    expect(new Set(lines.map((l) => l.response.body.model))).toEqual(
      new Set(['gpt-4o-mini', 'gpt-4o']),
    );
  });
});
