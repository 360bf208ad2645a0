import { createReadStream } from 'node:fs';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  chatLine,
  startTestServer,
  waitForBatch,
  writeJsonl,
  type TestServer,
} from '../helpers/test-server.ts';

interface RawList {
  object: string;
  data: { id: string; object: string; purpose?: string }[];
  first_id: string | null;
  last_id: string | null;
  has_more: boolean;
}

type RawBody = Partial<RawList> & {
  error?: { message: string; type: string; param: string | null; code: string | null };
};

async function rawGet(
  t: TestServer,
  pathAndQuery: string,
): Promise<{ status: number; body: RawBody }> {
  const res = await fetch(`${t.baseURL}${pathAndQuery}`, {
    headers: { authorization: 'Bearer test-key' },
  });
  return { status: res.status, body: (await res.json()) as RawBody };
}

async function upload(
  t: TestServer,
  purpose: 'batch' | 'user_data',
  name: string,
): Promise<string> {
  const path = writeJsonl([chatLine(`${name}-1`, `hello from ${name}`)], `${name}.jsonl`);
  const file = await t.client.files.create({ file: createReadStream(path), purpose });
  expect(file.purpose).toBe(purpose);
  return file.id;
}

describe('empty lists', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(async () => t.close());

  it('returns an empty files page with null cursors', async () => {
    const { status, body } = await rawGet(t, '/files');
    expect(status).toBe(200);
    expect(body).toEqual({
      object: 'list',
      data: [],
      first_id: null,
      last_id: null,
      has_more: false,
    });
  });

  it('returns an empty batches page with null cursors', async () => {
    const { status, body } = await rawGet(t, '/batches');
    expect(status).toBe(200);
    expect(body).toEqual({
      object: 'list',
      data: [],
      first_id: null,
      last_id: null,
      has_more: false,
    });
  });

  it('auto-pagination over empty lists yields nothing', async () => {
    const files: string[] = [];
    for await (const f of t.client.files.list({ limit: 3 })) files.push(f.id);
    const batches: string[] = [];
    for await (const b of t.client.batches.list({ limit: 5 })) batches.push(b.id);
    expect(files).toEqual([]);
    expect(batches).toEqual([]);
  });
});

describe('GET /v1/files: purpose, order, limit, after', () => {
  let t: TestServer;
  /** Upload order: b1, u1, b2, b3, u2. */
  let ids: { b1: string; u1: string; b2: string; b3: string; u2: string };
  let createdOrder: string[];

  beforeAll(async () => {
    t = await startTestServer();
    const b1 = await upload(t, 'batch', 'b1');
    const u1 = await upload(t, 'user_data', 'u1');
    const b2 = await upload(t, 'batch', 'b2');
    const b3 = await upload(t, 'batch', 'b3');
    const u2 = await upload(t, 'user_data', 'u2');
    ids = { b1, u1, b2, b3, u2 };
    createdOrder = [b1, u1, b2, b3, u2];
  });
  afterAll(async () => t.close());

  it('lists newest first by default, all purposes, has_more false', async () => {
    const page = await t.client.files.list();
    expect(page.data.map((f) => f.id)).toEqual([...createdOrder].reverse());
    expect(page.has_more).toBe(false);
    const { body } = await rawGet(t, '/files');
    const raw = body as RawList;
    expect(raw.object).toBe('list');
    expect(raw.first_id).toBe(ids.u2);
    expect(raw.last_id).toBe(ids.b1);
    expect(raw.has_more).toBe(false);
  });

  it('filters by purpose, orders asc and pages with limit (SDK page walking)', async () => {
    const first = await t.client.files.list({ purpose: 'batch', order: 'asc', limit: 2 });
    expect(first.data.map((f) => f.id)).toEqual([ids.b1, ids.b2]);
    expect(first.data.every((f) => f.purpose === 'batch')).toBe(true);
    expect(first.has_more).toBe(true);
    expect(first.hasNextPage()).toBe(true);
    const second = await first.getNextPage();
    expect(second.data.map((f) => f.id)).toEqual([ids.b3]);
    expect(second.has_more).toBe(false);
    expect(second.hasNextPage()).toBe(false);
  });

  it('walks `after` manually, and the raw page carries first_id/last_id/has_more', async () => {
    const p1 = await rawGet(t, '/files?purpose=batch&order=asc&limit=2');
    expect(p1.status).toBe(200);
    const raw1 = p1.body as RawList;
    expect(raw1.data.map((f) => f.id)).toEqual([ids.b1, ids.b2]);
    expect(raw1.first_id).toBe(ids.b1);
    expect(raw1.last_id).toBe(ids.b2);
    expect(raw1.has_more).toBe(true);

    const p2 = await rawGet(t, `/files?purpose=batch&order=asc&limit=2&after=${raw1.last_id}`);
    const raw2 = p2.body as RawList;
    expect(raw2.data.map((f) => f.id)).toEqual([ids.b3]);
    expect(raw2.first_id).toBe(ids.b3);
    expect(raw2.last_id).toBe(ids.b3);
    expect(raw2.has_more).toBe(false);

    // The same walk with the SDK's `after` parameter.
    const viaSdk = await t.client.files.list({
      purpose: 'batch',
      order: 'asc',
      limit: 2,
      after: ids.b2,
    });
    expect(viaSdk.data.map((f) => f.id)).toEqual([ids.b3]);

    // An exhausted filter yields an empty page with null cursors.
    const p3 = await rawGet(t, `/files?purpose=batch&order=asc&limit=2&after=${ids.b3}`);
    expect(p3.body).toEqual({
      object: 'list',
      data: [],
      first_id: null,
      last_id: null,
      has_more: false,
    });

    const none = await rawGet(t, '/files?purpose=fine-tune');
    expect(none.body).toEqual({
      object: 'list',
      data: [],
      first_id: null,
      last_id: null,
      has_more: false,
    });
  });

  it('walks `after` in the default (desc) order', async () => {
    const page = await t.client.files.list({ limit: 2, after: ids.b3 });
    expect(page.data.map((f) => f.id)).toEqual([ids.b2, ids.u1]);
    expect(page.has_more).toBe(true);
    const userData = await t.client.files.list({ purpose: 'user_data' });
    expect(userData.data.map((f) => f.id)).toEqual([ids.u2, ids.u1]);
  });

  it('SDK auto-pagination with limit 3 yields every file exactly once, newest first', async () => {
    const seen: string[] = [];
    for await (const f of t.client.files.list({ limit: 3 })) seen.push(f.id);
    expect(seen).toEqual([...createdOrder].reverse());
    const pageSizes: number[] = [];
    for await (const page of (await t.client.files.list({ limit: 3 })).iterPages())
      pageSizes.push(page.data.length);
    expect(pageSizes).toEqual([3, 2]);
  });

  it('rejects bad list parameters with 400', async () => {
    const badOrder = await rawGet(t, '/files?order=sideways');
    expect(badOrder.status).toBe(400);
    expect(badOrder.body.error).toMatchObject({ type: 'invalid_request_error', param: 'order' });
    const badLimit = await rawGet(t, '/files?limit=0');
    expect(badLimit.status).toBe(400);
    expect(badLimit.body.error).toMatchObject({ type: 'invalid_request_error', param: 'limit' });
  });

  it('lists batch output files (purpose batch_output) and filters them by purpose', async () => {
    const batch = await t.client.batches.create({
      input_file_id: ids.b1,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    const done = await waitForBatch(t.client, batch.id);
    expect(done.status).toBe('completed');
    const outputId = done.output_file_id;
    expect(outputId).toBeTruthy();

    const all = await t.client.files.list();
    expect(all.data[0]!.id).toBe(outputId);
    expect(all.data[0]!.purpose).toBe('batch_output');
    expect(all.data.map((f) => f.id)).toEqual([outputId, ...[...createdOrder].reverse()]);

    const outputs = await t.client.files.list({ purpose: 'batch_output' });
    expect(outputs.data.map((f) => f.id)).toEqual([outputId]);
    const raw = (await rawGet(t, '/files?purpose=batch_output')).body as RawList;
    expect(raw.first_id).toBe(outputId);
    expect(raw.last_id).toBe(outputId);
    expect(raw.has_more).toBe(false);

    const inputs = await t.client.files.list({ purpose: 'batch' });
    expect(inputs.data.map((f) => f.id)).toEqual([ids.b3, ids.b2, ids.b1]);
  });
});

describe('GET /v1/batches: newest first, default page 20, SDK auto-pagination', () => {
  const COUNT = 250;
  let t: TestServer;
  let created: string[];

  beforeAll(async () => {
    t = await startTestServer({ env: { OPENBATCH_TICK_MS: '60000' } });
    const path = writeJsonl([chatLine('only', 'tiny')]);
    const file = await t.client.files.create({ file: createReadStream(path), purpose: 'batch' });
    created = [];
    for (let i = 0; i < COUNT; i++) {
      const b = await t.client.batches.create({
        input_file_id: file.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
        metadata: { n: String(i) },
      });
      created.push(b.id);
    }
    expect(new Set(created).size).toBe(COUNT);
  });
  afterAll(async () => t.close());

  it('the SDK auto-pagination walks every page of 250 batches exactly once, newest first', async () => {
    const seen: string[] = [];
    for await (const b of t.client.batches.list({ limit: 20 })) seen.push(b.id);
    expect(seen.length).toBe(COUNT);
    expect(new Set(seen).size).toBe(COUNT);
    expect(seen).toEqual([...created].reverse());

    const pageSizes: number[] = [];
    for await (const page of (await t.client.batches.list({ limit: 20 })).iterPages())
      pageSizes.push(page.data.length);
    expect(pageSizes).toEqual([...Array<number>(12).fill(20), 10]);
  });

  it('pages of 100 walk the same order', async () => {
    const seen: string[] = [];
    for await (const b of t.client.batches.list({ limit: 100 })) seen.push(b.id);
    expect(seen).toEqual([...created].reverse());
  });

  it('defaults to a page of 20 with has_more and cursors', async () => {
    const { status, body } = await rawGet(t, '/batches');
    expect(status).toBe(200);
    const raw = body as RawList;
    expect(raw.object).toBe('list');
    expect(raw.data.length).toBe(20);
    expect(raw.has_more).toBe(true);
    const newest20 = [...created].reverse().slice(0, 20);
    expect(raw.data.map((b) => b.id)).toEqual(newest20);
    expect(raw.first_id).toBe(newest20[0]);
    expect(raw.last_id).toBe(newest20[19]);
    expect(raw.data.every((b) => b.object === 'batch')).toBe(true);

    // Manual `after` walk from the last page's cursor.
    const next = (await rawGet(t, `/batches?limit=20&after=${raw.last_id}`)).body as RawList;
    expect(next.data.map((b) => b.id)).toEqual([...created].reverse().slice(20, 40));

    // The oldest batch is the end of the list.
    const tail = (await rawGet(t, `/batches?after=${created[0]}`)).body as RawList;
    expect(tail).toEqual({
      object: 'list',
      data: [],
      first_id: null,
      last_id: null,
      has_more: false,
    });
    const last = (await rawGet(t, `/batches?limit=1&after=${created[1]}`)).body as RawList;
    expect(last.data.map((b) => b.id)).toEqual([created[0]]);
    expect(last.has_more).toBe(false);
  });

  it('rejects limit over 100 (and under 1) with 400', async () => {
    const raw = await rawGet(t, '/batches?limit=101');
    expect(raw.status).toBe(400);
    expect(raw.body.error).toMatchObject({ type: 'invalid_request_error', param: 'limit' });
    await expect(t.client.batches.list({ limit: 101 })).rejects.toBeInstanceOf(
      OpenAI.BadRequestError,
    );
    expect((await rawGet(t, '/batches?limit=0')).status).toBe(400);
    const max = (await rawGet(t, '/batches?limit=100')).body as RawList;
    expect(max.data.length).toBe(100);
    expect(max.has_more).toBe(true);
  });
});
