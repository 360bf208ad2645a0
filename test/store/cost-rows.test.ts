import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createPostgresStore } from '../../src/store/postgres/postgres-store.ts';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import type { Store } from '../../src/store/store.ts';
import { createDatabase } from '../helpers/postgres-server.ts';

/** The response cache table (issue 13) on both stores: lookup, scope, expiry, bound. */

const dir = mkdtempSync(join(tmpdir(), 'openbatch-cost-rows-'));
const stores: Store[] = [];
afterAll(async () => {
  for (const s of stores) await s.close();
  rmSync(dir, { recursive: true, force: true });
});

const openers: [string, () => Promise<Store>][] = [
  ['sqlite', async () => createSqliteStore(join(dir, 'openbatch.db'))],
  ['postgres', async () => createPostgresStore(await createDatabase(inject('postgresUrl')))],
];

describe.each(openers)('response cache rows on %s', (_name, open) => {
  it('finds answers by scope and key, drops expired ones, and keeps the newest maxEntries', async () => {
    const store = await open();
    stores.push(store);
    const entry = (scope: string, key: string, createdMs: number, ttlMs = 10_000) => ({
      scope,
      key,
      status: 200,
      body: `{"answer":"${scope}/${key}"}`,
      created_at_ms: createdMs,
      expires_at_ms: createdMs + ttlMs,
    });
    for (let i = 0; i < 5; i++) await store.putCachedResponse(entry('a', `k${i}`, 1_000 + i));
    await store.putCachedResponse(entry('b', 'k0', 1_010, 1)); // expires at once
    expect((await store.cachedResponse('a', 'k3', 2_000))?.body).toBe('{"answer":"a/k3"}');
    expect(await store.cachedResponse('b', 'k1', 2_000)).toBeNull();
    expect(await store.cachedResponse('b', 'k0', 2_000)).toBeNull(); // expired
    // Replacing an entry keeps one row.
    await store.putCachedResponse({ ...entry('a', 'k4', 1_004), body: '{"answer":"new"}' });
    expect((await store.cachedResponse('a', 'k4', 2_000))?.body).toBe('{"answer":"new"}');
    expect(await store.pruneResponseCache(2_000, 3)).toBe(3); // b/k0 expired, a/k0 and a/k1 oldest
    expect(await store.cachedResponse('a', 'k1', 2_000)).toBeNull();
    expect(await store.cachedResponse('a', 'k2', 2_000)).not.toBeNull();
    expect(await store.pruneResponseCache(2_000, 3)).toBe(0);
  });
});
