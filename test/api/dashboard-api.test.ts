import { createReadStream } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatLine, startTestServer, writeJsonl, type TestServer } from '../helpers/test-server.ts';

const KEY_A = 'key-project-alpha-0123456789';
const KEY_B = 'key-project-beta-0123456789';
const KEY_ADMIN = 'key-admin-ops-0123456789';

let server: TestServer;
let base: string;
beforeAll(async () => {
  server = await startTestServer({
    sim: { latencyMs: 3_000 },
    env: { OPENBATCH_API_KEYS: `${KEY_A}:alpha,${KEY_B}:beta,${KEY_ADMIN}:ops:admin` },
  });
  base = server.baseURL.replace(/\/v1$/, '');
});
afterAll(async () => server.close());

const call = (path: string, key: string | null, method = 'GET') =>
  fetch(`${base}${path}`, {
    method,
    headers: key === null ? {} : { authorization: `Bearer ${key}` },
  });

describe('dashboard routes', () => {
  it('serves the page without a key, with a strict CSP, and nothing outside its folder', async () => {
    const page = await call('/dashboard', null);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    for (const path of [
      '/dashboard/static/..%2F..%2Fpackage.json',
      '/dashboard/static/../package.json',
      '/dashboard/static/nope.js',
    ])
      expect((await call(path, null)).status).toBe(404);
    expect((await call('/dashboard/api/batches', null)).status).toBe(401);
  });

  it("scopes data to the key's project; an admin key reads and cancels any project's batch", async () => {
    const client = server.clientWithKey(KEY_A);
    const file = await client.files.create({
      file: createReadStream(writeJsonl([chatLine('a', 'slow')])),
      purpose: 'batch',
    });
    const batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    const ids = async (key: string) =>
      (
        (await (await call('/dashboard/api/batches', key)).json()) as { data: { id: string }[] }
      ).data.map((b) => b.id);
    expect(await ids(KEY_A)).toEqual([batch.id]);
    expect(await ids(KEY_B)).toEqual([]);
    expect(await ids(KEY_ADMIN)).toEqual([batch.id]);
    expect((await call(`/dashboard/api/batches/${batch.id}`, KEY_B)).status).toBe(404);
    expect((await call(`/dashboard/api/batches/${batch.id}/cancel`, KEY_B, 'POST')).status).toBe(
      404,
    );
    expect((await call(`/dashboard/api/files/${file.id}/content`, KEY_B)).status).toBe(404);
    expect((await call(`/dashboard/api/files/${file.id}/content`, KEY_ADMIN)).status).toBe(200);
    const upstreamsB = (await (await call('/dashboard/api/upstreams', KEY_B)).json()) as {
      upstreams: Record<string, unknown>[];
    };
    expect(Object.keys(upstreamsB.upstreams[0]!).sort()).toEqual(['concurrencyLimit', 'upstream']);

    const cancelled = await call(`/dashboard/api/batches/${batch.id}/cancel`, KEY_ADMIN, 'POST');
    expect(cancelled.status).toBe(200);
    expect(((await cancelled.json()) as { status: string }).status).toMatch(/^cancell/);
    expect((await client.batches.retrieve(batch.id)).status).toMatch(/^cancell/);
  });
});
