import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

interface Answer {
  status: number;
  body: string;
}

/** A raw request (fetch would not let a test set Host). */
function send(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string | Buffer },
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: init.method ?? 'GET', headers: init.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
      );
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

const CHAT = JSON.stringify({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: 'spend the operator’s money' }],
});
const BATCH = JSON.stringify({
  input_file_id: 'file-abc',
  endpoint: '/v1/chat/completions',
  completion_window: '24h',
});

function multipart(): { body: Buffer; type: string } {
  const boundary = 'xxBOUNDARYxx';
  const body = Buffer.from(
    [
      `--${boundary}`,
      'Content-Disposition: form-data; name="purpose"',
      '',
      'batch',
      `--${boundary}`,
      'Content-Disposition: form-data; name="file"; filename="a.jsonl"',
      'Content-Type: application/octet-stream',
      '',
      '{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[]}}',
      `--${boundary}--`,
      '',
    ].join('\r\n'),
  );
  return { body, type: `multipart/form-data; boundary=${boundary}` };
}

describe('open mode refuses what a browser could send on a page’s behalf', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ env: { OPENBATCH_ALLOWED_ORIGINS: 'http://localhost:5173' } });
  });
  afterAll(async () => t.close());

  const evil = { origin: 'http://evil.example' };

  it('refuses a cross-origin multipart upload, batch create and chat completion', async () => {
    const calls = t.sim.calls().length;
    const { body, type } = multipart();
    const upload = await send(`${t.baseURL}/files`, {
      method: 'POST',
      headers: { ...evil, 'content-type': type },
      body,
    });
    const batch = await send(`${t.baseURL}/batches`, {
      method: 'POST',
      headers: { ...evil, 'content-type': 'text/plain' },
      body: BATCH,
    });
    const chat = await send(`${t.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { ...evil, 'content-type': 'text/plain' },
      body: CHAT,
    });
    for (const answer of [upload, batch, chat]) {
      expect(answer.status).toBe(403);
      expect(JSON.parse(answer.body).error.code).toBe('origin_not_allowed');
    }
    expect(t.sim.calls().length).toBe(calls);
    expect((await t.client.files.list()).data).toEqual([]);
  });

  it('refuses Sec-Fetch-Site: cross-site without an Origin', async () => {
    const answer = await send(`${t.baseURL}/files`, {
      headers: { 'sec-fetch-site': 'cross-site' },
    });
    expect(answer.status).toBe(403);
  });

  it('refuses a foreign Host (DNS rebinding), on reads too', async () => {
    const answer = await send(`${t.baseURL}/files`, { headers: { host: 'evil.example:8080' } });
    expect(answer.status).toBe(403);
    expect(JSON.parse(answer.body).error.code).toBe('host_not_allowed');
    const admin = await send(t.baseURL.replace(/\/v1$/, '/admin/scheduler'), {
      headers: { host: 'rebound.evil.example' },
    });
    expect(admin.status).toBe(403);
  });

  it('refuses a JSON route body that is not sent as application/json', async () => {
    const answer = await send(`${t.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: CHAT,
    });
    expect(answer.status).toBe(415);
    expect(JSON.parse(answer.body).error.type).toBe('invalid_request_error');
  });

  it('accepts its own origin, an allowed origin, loopback names, and the SDK', async () => {
    const port = new URL(t.baseURL).port;
    for (const headers of [
      { origin: `http://127.0.0.1:${port}` },
      { origin: 'http://localhost:5173', 'sec-fetch-site': 'same-site' },
      { host: `localhost:${port}` },
      { host: `[::1]:${port}` },
    ]) {
      const answer = await send(`${t.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: CHAT,
      });
      expect(answer.status, JSON.stringify(headers)).toBe(200);
    }
    expect((await t.client.batches.list()).data).toEqual([]);
  });
});

describe('with keys, the guard stands aside (the key is the protection)', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ env: { OPENBATCH_API_KEYS: 'key-guard-0123456789:p' } });
  });
  afterAll(async () => t.close());

  it('serves a keyed request whatever its Host', async () => {
    const answer = await send(`${t.baseURL}/files`, {
      headers: { host: 'api.example.com', authorization: 'Bearer key-guard-0123456789' },
    });
    expect(answer.status).toBe(200);
  });
});
