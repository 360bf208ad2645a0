import { createReadStream } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  chatLine,
  startTestServer,
  waitForBatch,
  writeJsonl,
  type TestServer,
} from '../helpers/test-server.ts';

const KEY_A = 'key-project-a-0123456789';
const KEY_B = 'key-project-b-0123456789';
const KEY_ADMIN = 'key-admin-0123456789abc';
const SECRET_MODEL = 'ft:gpt-4o-mini:acme:secret-model-of-a';

async function admin(t: TestServer, key: string | null): Promise<{ text: string; json: any }> {
  const headers: Record<string, string> = key ? { authorization: `Bearer ${key}` } : {};
  const res = await fetch(t.baseURL.replace(/\/v1$/, '/admin/scheduler'), { headers });
  expect(res.status).toBe(200);
  const text = await res.text();
  return { text, json: JSON.parse(text) };
}

describe('/admin/scheduler is scoped: project B sees nothing of project A', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({
      env: { OPENBATCH_API_KEYS: `${KEY_A}:alpha,${KEY_B}:beta,${KEY_ADMIN}:ops:admin` },
    });
  });
  afterAll(async () => t.close());

  it("shows only the caller's batches and no model or counter to a member key", async () => {
    const a = t.clientWithKey(KEY_A);
    await a.chat.completions.create({
      model: SECRET_MODEL,
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 5,
    });
    const file = await a.files.create({
      file: createReadStream(writeJsonl([chatLine('slow', '[sim:latency=5000] hi', SECRET_MODEL)])),
      purpose: 'batch',
    });
    const batch = await a.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    await waitForBatch(a, batch.id, 10_000, (s) => s === 'in_progress');

    const seenByA = await admin(t, KEY_A);
    expect(seenByA.json.batches.map((b: { id: string }) => b.id)).toEqual([batch.id]);
    const seenByB = await admin(t, KEY_B);
    expect(seenByB.json.batches).toEqual([]);
    expect(seenByB.text).not.toContain('secret-model');
    expect(seenByB.text).not.toContain(batch.id);
    expect(seenByB.json.upstreams.map((u: object) => Object.keys(u))).toEqual([
      ['upstream', 'concurrencyLimit'],
    ]);
    expect(seenByA.text).not.toContain('secret-model');

    // The line is sent a moment after the batch turns in_progress (later on PostgreSQL).
    let seenByAdmin = await admin(t, KEY_ADMIN);
    for (let i = 0; i < 100 && !(seenByAdmin.json.upstreams[0].sent > 0); i++) {
      await new Promise((r) => setTimeout(r, 50));
      seenByAdmin = await admin(t, KEY_ADMIN);
    }
    expect(seenByAdmin.text).toContain(SECRET_MODEL);
    expect(seenByAdmin.json.upstreams[0].sent).toBeGreaterThan(0);
    await a.batches.cancel(batch.id);
  }, 30_000);

  it('answers 401 without a key', async () => {
    const res = await fetch(t.baseURL.replace(/\/v1$/, '/admin/scheduler'));
    expect(res.status).toBe(401);
  });
});

/** Heap in use after a full collection (the flag is set once; `gc` comes from a fresh context). */
function heapAfterGc(): number {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
  return process.memoryUsage().heapUsed;
}

describe('per-model limiter state is bounded (open mode)', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ env: { OPENBATCH_UPSTREAM_TPM: '100000000' } });
  });
  afterAll(async () => t.close());

  it('keeps nothing of 10 MB model names; heap and /admin stay bounded', async () => {
    const before = heapAfterGc();
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${t.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model: `${i}${'m'.repeat(10 * 1024 * 1024)}`,
          messages: [{ role: 'user', content: 'hi' }],
        }),
      });
      await res.text();
    }
    const grownBytes = heapAfterGc() - before;
    expect(grownBytes).toBeLessThan(20 * 1024 * 1024);
    expect((await admin(t, null)).text.length).toBeLessThan(64 * 1024);
  }, 60_000);

  it('lists a bounded number of the many models it has seen', async () => {
    const names = Array.from({ length: 300 }, (_, i) => `model-${i}-${'x'.repeat(240)}`);
    for (let i = 0; i < names.length; i += 30) {
      await Promise.all(
        names.slice(i, i + 30).map((model) =>
          t.client.chat.completions.create({
            model,
            messages: [{ role: 'user', content: 'hi' }],
            max_tokens: 1,
          }),
        ),
      );
    }
    const { text, json } = await admin(t, null);
    expect(json.upstreams[0].keyCount).toBe(300);
    expect(json.upstreams[0].keys.length).toBeLessThanOrEqual(20);
    expect(text.length).toBeLessThan(64 * 1024);
  }, 60_000);
});
