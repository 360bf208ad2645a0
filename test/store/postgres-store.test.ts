import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createPostgresStore } from '../../src/store/postgres/postgres-store.ts';
import type { Store } from '../../src/store/store.ts';
import { createDatabase, startPostgres, type PostgresServer } from '../helpers/postgres-server.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!();
});

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

/** Writes a JSONL chat batch of `lines` lines; returns its path. */
function batchFile(dir: string, lines: number): string {
  const path = join(dir, 'input.jsonl');
  const body = (i: number) => ({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: `q${i}` }],
  });
  writeFileSync(
    path,
    Array.from({ length: lines }, (_, i) =>
      JSON.stringify({
        custom_id: `r${i}`,
        method: 'POST',
        url: '/v1/chat/completions',
        body: body(i),
      }),
    ).join('\n') + '\n',
  );
  return path;
}

async function runToEnd(t: TestServer, path: string, pollMs = 100, timeoutMs = 60_000) {
  const { createReadStream } = await import('node:fs');
  const file = await t.client.files.create({ file: createReadStream(path), purpose: 'batch' });
  const created = await t.client.batches.create({
    input_file_id: file.id,
    endpoint: '/v1/chat/completions',
    completion_window: '24h',
  });
  return { created, wait: () => waitTerminal(t, created.id, pollMs, timeoutMs) };
}

async function waitTerminal(t: TestServer, id: string, pollMs: number, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const b = await t.client.batches.retrieve(id);
      if (['completed', 'failed', 'expired', 'cancelled'].includes(b.status)) return b;
    } catch {
      // the database may be down: keep polling
    }
    if (Date.now() > deadline) throw new Error(`batch ${id} not terminal in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

async function outputIds(t: TestServer, fileId: string): Promise<string[]> {
  const text = await (await t.client.files.content(fileId)).text();
  return text
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { custom_id: string }).custom_id);
}

describe('PostgreSQL store', () => {
  it('migrates once when several processes open a fresh database at the same moment', async () => {
    const url = await createDatabase(inject('postgresUrl'));
    const stores: Store[] = await Promise.all(
      Array.from({ length: 4 }, () => createPostgresStore(url)),
    );
    cleanup.push(async () => {
      for (const s of stores) await s.close();
    });
    const [version] = await query<{ version: number }>(url, 'SELECT version FROM openbatch_schema');
    expect(version?.version).toBeGreaterThan(0);
    expect(await query(url, 'SELECT * FROM openbatch_schema')).toHaveLength(1);
    // Every process works on the same tables.
    await stores[0]!.insertApiKey({ key_hash: 'h', project: 'p', role: 'admin', created_at_ms: 1 });
    expect(await stores[3]!.keyByHash('h')).toEqual({ project: 'p', role: 'admin' });
  });

  it('is the store when OPENBATCH_DATABASE_URL is set: rows in PostgreSQL, no SQLite file', async () => {
    const url = await createDatabase(inject('postgresUrl'));
    const t = await startTestServer({ env: { OPENBATCH_DATABASE_URL: url } });
    cleanup.push(() => t.close());
    const { wait } = await runToEnd(t, batchFile(t.dataDir, 20));
    const done = await wait();
    expect(done.status).toBe('completed');
    expect(existsSync(join(t.dataDir, 'openbatch.db'))).toBe(false);
    const rows = await query<{ status: string; completed: number }>(
      url,
      'SELECT status, completed::int AS completed FROM batches',
    );
    expect(rows).toEqual([{ status: 'completed', completed: 20 }]);
  });
});

describe('PostgreSQL outage', () => {
  let server: PostgresServer | null = null;
  afterEach(async () => {
    await server?.stop();
    server = null;
  });

  it('answers 503 in OpenAI’s envelope while the database is down, then completes the batch with nothing lost', async () => {
    server = await startPostgres();
    const pgServer = server;
    const t = await startTestServer({
      env: { OPENBATCH_DATABASE_URL: pgServer.url },
      sim: { latencyMs: 20 },
    });
    cleanup.push(() => t.close());
    const lines = 400;
    const { created, wait } = await runToEnd(t, batchFile(t.dataDir, lines));
    // Let some lines finish, then take the database away for 10 s mid-batch.
    for (;;) {
      const b = await t.client.batches.retrieve(created.id);
      if ((b.request_counts?.completed ?? 0) > 0) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    pgServer.ctl(['-m', 'fast', 'stop']);
    const res = await fetch(`${t.baseURL}/batches/${created.id}`, {
      headers: { authorization: 'Bearer test-key' },
    });
    expect(res.status).toBe(503);
    const body = (await res.json()) as { error: { type: string; message: string } };
    expect(body.error.type).toBe('server_error');
    expect(body.error.message).toMatch(/temporarily unavailable/);
    await new Promise((r) => setTimeout(r, 10_000));
    pgServer.ctl(['-w', 'start']);
    const done = await wait();
    expect(done.status).toBe('completed');
    expect(done.request_counts).toMatchObject({ total: lines, completed: lines, failed: 0 });
    const ids = await outputIds(t, done.output_file_id!);
    expect(ids).toHaveLength(lines);
    expect(new Set(ids).size).toBe(lines);
  }, 120_000);
});
