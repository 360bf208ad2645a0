import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';
import { callsById } from './harness/checker.ts';
import { jsonlOf, taggedLine, waitTerminal, waitUntil } from './harness/chaos-env.ts';

/**
 * Tenant isolation matrix (A8 #18, design.md §4.9): two projects; every route × every object kind
 * with the other project's ids answers 404 (with the same body as an id that never existed, so
 * not even existence leaks), lists never show the other project's objects under any filter or
 * cursor, and a batch cannot be created from another project's input file.
 */

interface Attempt {
  route: string;
  status: number;
  body: string;
}

async function attempt(route: string, fn: () => Promise<unknown>): Promise<Attempt> {
  try {
    const value = await fn();
    const body = value instanceof Response ? await value.text() : JSON.stringify(value ?? null);
    return { route, status: 200, body };
  } catch (err) {
    if (err instanceof OpenAI.APIError)
      return { route, status: err.status ?? 0, body: JSON.stringify(err.error ?? null) };
    throw err;
  }
}

describe('isolation matrix (projects alpha and beta)', () => {
  let t: TestServer;
  let alpha: OpenAI;
  let beta: OpenAI;
  const ids = {
    inputFile: '',
    userFile: '',
    doneBatch: '',
    runningBatch: '',
    outputFile: '',
    errorFile: '',
    slowFile: '',
  };
  let inputContent = '';

  beforeAll(async () => {
    t = await startTestServer({
      env: { OPENBATCH_API_KEYS: 'key-alpha-0123456789:alpha,key-beta-0123456789:beta' },
    });
    alpha = t.clientWithKey('key-alpha-0123456789');
    beta = t.clientWithKey('key-beta-0123456789');
    inputContent = jsonlOf([
      taggedLine('iso-ok-1'),
      taggedLine('iso-ok-2'),
      taggedLine('iso-bad', 'status=400'),
    ]);
    const input = await alpha.files.create({
      file: await toFile(Buffer.from(inputContent), 'alpha.jsonl'),
      purpose: 'batch',
    });
    const user = await alpha.files.create({
      file: await toFile(Buffer.from('private notes of alpha'), 'notes.txt'),
      purpose: 'user_data',
    });
    const done = await alpha.batches.create({
      input_file_id: input.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    const finished = await waitTerminal(alpha, done.id, 30_000);
    const slow = await alpha.files.create({
      file: await toFile(
        Buffer.from(jsonlOf([taggedLine('iso-slow', 'latency=30000')])),
        'slow.jsonl',
      ),
      purpose: 'batch',
    });
    const running = await alpha.batches.create({
      input_file_id: slow.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    await waitUntil(
      async () => (await alpha.batches.retrieve(running.id)).status === 'in_progress',
      10_000,
      'the slow batch to start',
    );
    Object.assign(ids, {
      inputFile: input.id,
      userFile: user.id,
      doneBatch: done.id,
      runningBatch: running.id,
      outputFile: finished.output_file_id ?? '',
      errorFile: finished.error_file_id ?? '',
      slowFile: slow.id,
    });
  }, 60_000);
  afterAll(async () => t.close());

  it('answers 404 to every route with the other project’s ids, exactly like for unknown ids', async () => {
    expect(ids.outputFile).not.toBe('');
    expect(ids.errorFile).not.toBe('');
    expect((await alpha.batches.retrieve(ids.runningBatch)).status).toBe('in_progress');
    const fileIds = [ids.inputFile, ids.userFile, ids.outputFile, ids.errorFile];
    const batchIds = [ids.doneBatch, ids.runningBatch];
    const attempts: Attempt[] = [];
    for (const id of fileIds) {
      attempts.push(await attempt(`GET /files/${id}`, () => beta.files.retrieve(id)));
      attempts.push(await attempt(`GET /files/${id}/content`, () => beta.files.content(id)));
      attempts.push(await attempt(`DELETE /files/${id}`, () => beta.files.delete(id)));
    }
    for (const id of batchIds) {
      attempts.push(await attempt(`GET /batches/${id}`, () => beta.batches.retrieve(id)));
      attempts.push(await attempt(`POST /batches/${id}/cancel`, () => beta.batches.cancel(id)));
    }
    const leaks = attempts.filter((a) => a.status !== 404);
    expect(leaks, JSON.stringify(leaks, null, 1)).toEqual([]);

    // Same answer as for an id that never existed (no existence oracle), modulo the id itself.
    const unknownFile = 'file-AAAAAAAAAAAAAAAAAAAAAA';
    const unknownBatch = 'batch_00000000000081900000000000000000';
    const ghost = [
      await attempt('file', () => beta.files.retrieve(unknownFile)),
      await attempt('content', () => beta.files.content(unknownFile)),
      await attempt('delete', () => beta.files.delete(unknownFile)),
      await attempt('batch', () => beta.batches.retrieve(unknownBatch)),
      await attempt('cancel', () => beta.batches.cancel(unknownBatch)),
    ];
    const norm = (a: Attempt, id: string, ghostId: string) => a.body.replaceAll(id, ghostId);
    const expectedByKind = [ghost[0], ghost[1], ghost[2]];
    for (let i = 0; i < fileIds.length; i++) {
      for (let k = 0; k < 3; k++) {
        const a = attempts[i * 3 + k] as Attempt;
        expect(norm(a, fileIds[i] as string, unknownFile), a.route).toBe(expectedByKind[k]?.body);
      }
    }
    for (let i = 0; i < batchIds.length; i++) {
      const base = fileIds.length * 3 + i * 2;
      expect(norm(attempts[base] as Attempt, batchIds[i] as string, unknownBatch)).toBe(
        ghost[3]?.body,
      );
      expect(norm(attempts[base + 1] as Attempt, batchIds[i] as string, unknownBatch)).toBe(
        ghost[4]?.body,
      );
    }
    console.log(
      `[isolation] ${attempts.length} cross-project requests, all 404 with the unknown-id body`,
    );

    // Nothing of alpha's was changed by beta's attempts.
    for (const id of fileIds) expect((await alpha.files.retrieve(id)).id).toBe(id);
    expect(await (await alpha.files.content(ids.inputFile)).text()).toBe(inputContent);
    expect((await alpha.batches.retrieve(ids.runningBatch)).status).toBe('in_progress');
  }, 60_000);

  it('never lists the other project’s objects, under any purpose filter or cursor', async () => {
    const own = await beta.files.create({
      file: await toFile(Buffer.from(jsonlOf([taggedLine('beta-1')])), 'beta.jsonl'),
      purpose: 'batch',
    });
    const alphaIds = new Set(Object.values(ids));
    const seen: string[] = [];
    const queries: OpenAI.Files.FileListParams[] = [
      {},
      { purpose: 'batch' },
      { purpose: 'batch_output' },
      { purpose: 'user_data' },
      { order: 'asc' },
      { order: 'desc', limit: 1 },
      { after: ids.inputFile },
      { after: ids.outputFile, order: 'asc' },
    ];
    for (const q of queries) {
      for await (const f of beta.files.list(q)) seen.push(f.id);
    }
    for (const q of [{}, { after: ids.doneBatch }, { after: ids.runningBatch, limit: 1 }]) {
      for await (const b of beta.batches.list(q)) seen.push(b.id);
    }
    expect(seen.filter((id) => alphaIds.has(id))).toEqual([]);
    expect(seen).toContain(own.id);
    // And the other way round.
    const alphaSeen: string[] = [];
    for await (const f of alpha.files.list()) alphaSeen.push(f.id);
    expect(alphaSeen).not.toContain(own.id);
    await expect(alpha.files.retrieve(own.id)).rejects.toMatchObject({ status: 404 });
  }, 30_000);

  it('cannot create a batch from the other project’s input file, and sends nothing for it', async () => {
    const before = callsById(t.sim.calls());
    const sentBefore =
      (before.get('iso-ok-1')?.length ?? 0) + (before.get('iso-slow')?.length ?? 0);
    const r = await attempt('POST /batches (alpha file)', () =>
      beta.batches.create({
        input_file_id: ids.inputFile,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      }),
    );
    let outcome = `HTTP ${r.status}`;
    if (r.status === 200) {
      const created = JSON.parse(r.body) as { id: string };
      const batch = await waitTerminal(beta, created.id, 20_000);
      outcome += ` → ${batch.status} ${JSON.stringify(batch.errors?.data ?? [])}`;
      expect(batch.status, outcome).toBe('failed');
      expect(batch.request_counts?.total ?? 0, outcome).toBe(0);
      expect(batch.output_file_id, outcome).toBeNull();
    } else {
      expect(r.status, outcome).toBeGreaterThanOrEqual(400);
      expect(r.status, outcome).toBeLessThan(500);
    }
    console.log(`[isolation] batch from another project's file: ${outcome}`);
    const after = callsById(t.sim.calls());
    const sentAfter = (after.get('iso-ok-1')?.length ?? 0) + (after.get('iso-slow')?.length ?? 0);
    expect(sentAfter, 'lines of the foreign file were sent upstream').toBe(sentBefore);
  }, 30_000);

  it('refuses a missing or unknown key with 401 on every route', async () => {
    const base = t.baseURL;
    const paths = [
      ['GET', `/files/${ids.inputFile}`],
      ['GET', '/files'],
      ['GET', `/batches/${ids.doneBatch}`],
      ['GET', '/batches'],
      ['POST', `/batches/${ids.doneBatch}/cancel`],
      ['DELETE', `/files/${ids.userFile}`],
    ] as const;
    for (const key of [null, 'not-a-key', 'KA', 'kb-x']) {
      for (const [method, path] of paths) {
        const res = await fetch(`${base}${path}`, {
          method,
          headers: key === null ? {} : { authorization: `Bearer ${key}` },
        });
        expect(res.status, `${method} ${path} with key ${String(key)}`).toBe(401);
        await res.text();
      }
    }
  }, 30_000);
});
