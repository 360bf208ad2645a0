import { createReadStream } from 'node:fs';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_BATCH_ERRORS } from '../../src/domain/batch-errors.ts';
import {
  chatLine,
  startTestServer,
  waitForBatch,
  writeJsonl,
  type TestServer,
} from '../helpers/test-server.ts';

/** A 10 KB line whose only fault is `1e400` under a long key (each error names the key path). */
function hugeNumberLine(i: number): string {
  const key = `k${'x'.repeat(10_000)}`;
  return `{"custom_id":"r${i}","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"${key}":1e400}}`;
}

async function createBatch(t: TestServer, lines: (object | string)[]) {
  const file = await t.client.files.create({
    file: createReadStream(writeJsonl(lines)),
    purpose: 'batch',
  });
  const batch = await t.client.batches.create({
    input_file_id: file.id,
    endpoint: '/v1/chat/completions',
    completion_window: '24h',
  });
  return waitForBatch(t.client, batch.id, 60_000);
}

describe('answers stay small whatever the input (caps with counts)', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(async () => t.close());

  it('lists a bounded error list with the total for 1,000 lines of 1e400; GET < 64 KiB', async () => {
    const lines = Array.from({ length: 1_000 }, (_, i) => hugeNumberLine(i));
    const batch = await createBatch(t, lines);
    expect(batch.status).toBe('failed');
    const data = batch.errors!.data!;
    expect(data.length).toBeLessThanOrEqual(MAX_BATCH_ERRORS);
    expect(data[0]).toMatchObject({ code: 'invalid_request', line: 1 });
    expect(data.at(-1)).toMatchObject({ code: 'too_many_errors', line: null });
    expect(data.at(-1)!.message).toMatch(/^1000 errors in all/);
    const headers = { authorization: 'Bearer test-key' };
    const one = await fetch(`${t.baseURL}/batches/${batch.id}`, { headers });
    expect((await one.arrayBuffer()).byteLength).toBeLessThan(64 * 1024);
    const list = await fetch(`${t.baseURL}/batches?limit=20`, { headers });
    expect((await list.arrayBuffer()).byteLength).toBeLessThan(64 * 1024);
  }, 90_000);

  it('refuses a 1 MB input_file_id with a short answer', async () => {
    const res = await fetch(`${t.baseURL}/batches`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer test-key' },
      body: JSON.stringify({
        input_file_id: `file-${'a'.repeat(1_000_000)}`,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      }),
    });
    expect(res.status).toBe(400);
    const text = await res.text();
    expect(text.length).toBeLessThan(1_024);
    expect(JSON.parse(text).error.param).toBe('input_file_id');
  });

  it('answers 404 for a 10 KB batch id without echoing it whole', async () => {
    const res = await fetch(`${t.baseURL}/batches/batch_${'b'.repeat(10_000)}`, {
      headers: { authorization: 'Bearer test-key' },
    });
    expect(res.status).toBe(404);
    expect((await res.text()).length).toBeLessThan(1_024);
  });

  it('refuses model names over 256 characters, in a line and in real time', async () => {
    const model = 'm'.repeat(300);
    const batch = await createBatch(t, [chatLine('a', 'hi', model)]);
    expect(batch.status).toBe('failed');
    expect(batch.errors!.data![0]).toMatchObject({ param: 'body.model', line: 1 });
    expect(batch.errors!.data![0]!.message).not.toContain(model);
    const err = await t.client.chat.completions
      .create({ model, messages: [{ role: 'user', content: 'hi' }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('model');
  });

  it.each([
    ['API_BASE', { API_BASE: 'http://evil.example' }],
    ['apiKey', { apiKey: 'sk-x' }],
    ['litellm_params.api_base', { litellm_params: { api_base: 'http://evil.example' } }],
    ['metadata.Base-URL', { metadata: { 'Base-URL': 'http://evil.example' } }],
  ])('refuses the routing field %s in a line and in real time', async (path, extra) => {
    const line = chatLine('a', 'hi') as { body: Record<string, unknown> };
    Object.assign(line.body, extra);
    const batch = await createBatch(t, [line]);
    expect(batch.status).toBe('failed');
    expect(batch.errors!.data![0]).toMatchObject({ param: `body.${path}`, line: 1 });
    const before = t.sim.calls().length;
    const err = await t.client.chat.completions
      .create({ ...(line.body as { model: string; messages: [] }) })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(t.sim.calls().length).toBe(before);
  });

  it('still forwards a tool whose schema has an api_key argument', async () => {
    const completion = await t.client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
      tools: [
        {
          type: 'function',
          function: {
            name: 'call',
            parameters: { type: 'object', properties: { api_key: { type: 'string' } } },
          },
        },
      ],
    });
    expect(completion.object).toBe('chat.completion');
  });
});
