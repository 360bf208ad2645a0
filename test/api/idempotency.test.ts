import { createReadStream, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APIError } from 'openai';
import { afterAll, describe, expect, it } from 'vitest';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import {
  chatLine,
  startTestServer,
  waitForBatch,
  writeJsonl,
  type TestServer,
} from '../helpers/test-server.ts';

const keyed = (key: string) => ({ headers: { 'Idempotency-Key': key } });

async function status409(p: Promise<unknown>): Promise<APIError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(APIError);
  expect((err as APIError).status).toBe(409);
  return err as APIError;
}

/** Every blob on disk belongs to a file the API lists: a replayed upload left no copy behind. */
async function expectNoOrphanBlob(t: TestServer): Promise<void> {
  // A finalizing batch publishes its files' bytes just before their rows: let batches end first.
  for (const batch of (await t.client.batches.list()).data) await waitForBatch(t.client, batch.id);
  const listed = new Set((await t.client.files.list()).data.map((f) => f.id));
  const blobs = readdirSync(join(t.dataDir, 'blobs'));
  expect(blobs.filter((id) => !listed.has(id))).toEqual([]);
}

describe('Idempotency-Key on POST /v1/batches and POST /v1/files', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'openbatch-idem-'));
  let t: TestServer;
  afterAll(async () => {
    await t?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('returns the first batch for the same key and body, a 409 for another body, across a restart', async () => {
    t = await startTestServer({ dataDir });
    const path = writeJsonl([chatLine('a', 'hi'), chatLine('b', 'there')]);
    const file = await t.client.files.create({ file: createReadStream(path), purpose: 'batch' });
    const params = {
      input_file_id: file.id,
      endpoint: '/v1/chat/completions' as const,
      completion_window: '24h' as const,
      metadata: { a: '1', b: '2' },
    };
    // Concurrent retries of one create: exactly one batch.
    const created = await Promise.all(
      Array.from({ length: 4 }, () => t.client.batches.create(params, keyed('create-1'))),
    );
    expect(new Set(created.map((b) => b.id)).size).toBe(1);
    // The same body with its keys in another order is the same request.
    const { metadata: _m, ...rest } = params;
    const reordered = { metadata: { b: '2', a: '1' }, ...rest };
    const again = await t.client.batches.create(reordered, keyed('create-1'));
    expect(again.id).toBe(created[0]!.id);
    const err = await status409(
      t.client.batches.create({ ...params, completion_window: '1h' as '24h' }, keyed('create-1')),
    );
    expect(err.message).toContain('different request body');
    expect(err.message).toContain(created[0]!.id);
    // No key, or another key: a new batch each time.
    const other = await t.client.batches.create(params, keyed('create-2'));
    expect(other.id).not.toBe(created[0]!.id);
    const list = await t.client.batches.list();
    expect(list.data.map((b) => b.id).sort()).toEqual([created[0]!.id, other.id].sort());

    await t.close();
    t = await startTestServer({ dataDir });
    expect((await t.client.batches.create(params, keyed('create-1'))).id).toBe(created[0]!.id);
    await status409(t.client.batches.create({ ...params, metadata: {} }, keyed('create-1')));
    expect((await t.client.batches.list()).data).toHaveLength(2);
  }, 60_000);

  it('returns the first file for the same key and bytes, and keeps no second copy', async () => {
    const path = writeJsonl([chatLine('a', 'hello')]);
    const first = await t.client.files.create(
      { file: createReadStream(path), purpose: 'batch' },
      keyed('upload-1'),
    );
    const second = await t.client.files.create(
      { file: createReadStream(path), purpose: 'batch' },
      keyed('upload-1'),
    );
    expect(second.id).toBe(first.id);
    await expectNoOrphanBlob(t);
    const changed = writeJsonl([chatLine('a', 'hello!')]);
    await status409(
      t.client.files.create(
        { file: createReadStream(changed), purpose: 'batch' },
        keyed('upload-1'),
      ),
    );
    await expectNoOrphanBlob(t);
  }, 30_000);
});

describe('idempotency keys in the store', () => {
  it('holds a key for 24 h and replaces it after', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'openbatch-idem-store-'));
    const store = createSqliteStore(join(dir, 'db'));
    try {
      const entry = {
        project: 'p',
        scope: 'files',
        key: 'k',
        request_hash: 'h1',
        object_id: 'file-1',
      };
      const file = (id: string) => ({
        id,
        project: 'p',
        purpose: 'batch' as const,
        filename: 'x.jsonl',
        bytes: 1,
        created_at_ms: 0,
        expires_at_ms: null,
      });
      expect(
        await store.insertFile(file('file-1'), {
          ...entry,
          created_at_ms: 1_000,
          live_after_ms: 0,
        }),
      ).toBeNull();
      const held = await store.insertFile(file('file-2'), {
        ...entry,
        object_id: 'file-2',
        created_at_ms: 2_000,
        live_after_ms: 500,
      });
      expect(held?.object_id).toBe('file-1');
      expect(await store.getFile('p', 'file-2')).toBeNull();
      // The entry from t=1000 is no longer live at live_after=1000: the key is taken anew.
      expect(
        await store.insertFile(file('file-3'), {
          ...entry,
          object_id: 'file-3',
          created_at_ms: 3_000,
          live_after_ms: 1_000,
        }),
      ).toBeNull();
      expect((await store.findIdempotencyKey('p', 'files', 'k', 0))?.object_id).toBe('file-3');
      expect(await store.purgeIdempotencyKeys(3_001)).toBe(1);
      expect(await store.findIdempotencyKey('p', 'files', 'k', 0)).toBeNull();
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
