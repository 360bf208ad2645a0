import { createReadStream, readFileSync } from 'node:fs';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  chatLine,
  startTestServer,
  waitForBatch,
  writeJsonl,
  type TestServer,
} from '../helpers/test-server.ts';

const TERMINAL = ['completed', 'failed', 'expired', 'cancelled'];

async function allFileIds(client: OpenAI): Promise<string[]> {
  const ids: string[] = [];
  for await (const f of client.files.list({ limit: 2 })) ids.push(f.id);
  return ids;
}

async function allBatchIds(client: OpenAI): Promise<string[]> {
  const ids: string[] = [];
  for await (const b of client.batches.list({ limit: 2 })) ids.push(b.id);
  return ids;
}

describe('API keys and project isolation (OPENBATCH_API_KEYS)', () => {
  let t: TestServer;
  let alpha: OpenAI;
  let beta: OpenAI;

  beforeAll(async () => {
    t = await startTestServer({
      env: { OPENBATCH_API_KEYS: 'key-a-0123456789abcd:alpha,key-b-0123456789abcd:beta' },
    });
    alpha = t.clientWithKey('key-a-0123456789abcd');
    beta = t.clientWithKey('key-b-0123456789abcd');
  });
  afterAll(async () => t.close());

  it("answers 401 with OpenAI's envelope when the Authorization header is missing", async () => {
    const res = await fetch(`${t.baseURL}/files`);
    expect(res.status).toBe(401);
    expect(res.headers.get('content-type')).toContain('application/json');
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="OpenAI API"');
    const body = (await res.json()) as {
      error: { message: string; type: string; param: unknown; code: unknown };
    };
    expect(body.error.type).toBe('invalid_request_error');
    expect(body.error.message.startsWith("You didn't provide an API key")).toBe(true);
    expect(body.error.param).toBeNull();
    expect(body.error.code).toBeNull();

    for (const authorization of ['Bearer', 'Bearer ', 'Basic a2V5LWE6', 'key-a']) {
      const r = await fetch(`${t.baseURL}/batches`, { headers: { authorization } });
      expect(r.status, authorization).toBe(401);
      const b = (await r.json()) as { error: { type: string } };
      expect(b.error.type).toBe('invalid_request_error');
    }
  });

  it('rejects a wrong key with AuthenticationError (401, invalid_api_key) without echoing the key', async () => {
    const wrongKey = 'sk-wrong-0123456789abcdefSECRET';
    const err = await t
      .clientWithKey(wrongKey)
      .files.list()
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    const authErr = err as InstanceType<typeof OpenAI.AuthenticationError>;
    expect(authErr.status).toBe(401);
    expect(authErr.code).toBe('invalid_api_key');
    expect(authErr.type).toBe('invalid_request_error');
    expect(authErr.message).not.toContain(wrongKey);
    expect(authErr.message).not.toContain('0123456789abcdef');

    const raw = await fetch(`${t.baseURL}/batches`, {
      headers: { authorization: `Bearer ${wrongKey}` },
    });
    expect(raw.status).toBe(401);
    const text = await raw.text();
    expect(text).not.toContain(wrongKey);
    expect(text).not.toContain('0123456789abcdef');
    // A configured key of the wrong case is still wrong.
    await expect(t.clientWithKey('KEY-A-0123456789ABCD').files.list()).rejects.toBeInstanceOf(
      OpenAI.AuthenticationError,
    );
  });

  it('keeps every route project-scoped', async () => {
    // Alpha's objects.
    const alphaPath = writeJsonl(
      [chatLine('a-1', 'alpha one'), chatLine('a-2', 'alpha two')],
      'alpha.jsonl',
    );
    const alphaBytes = readFileSync(alphaPath, 'utf8');
    const aFile = await alpha.files.create({ file: createReadStream(alphaPath), purpose: 'batch' });
    const aBatch = await alpha.batches.create({
      input_file_id: aFile.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
      metadata: { owner: 'alpha' },
    });

    // Beta cannot see or touch them (attempted while alpha's batch may still be running).
    await expect(beta.files.retrieve(aFile.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(beta.files.content(aFile.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(beta.files.delete(aFile.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(beta.batches.retrieve(aBatch.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(beta.batches.cancel(aBatch.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);

    const aDone = await waitForBatch(alpha, aBatch.id);
    expect(aDone.status).toBe('completed');
    const aOutput = aDone.output_file_id!;
    expect(aOutput).toBeTruthy();
    await expect(beta.files.retrieve(aOutput)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(beta.files.content(aOutput)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(beta.files.delete(aOutput)).rejects.toBeInstanceOf(OpenAI.NotFoundError);

    // Beta's own objects.
    const betaPath = writeJsonl([chatLine('b-1', 'beta one')], 'beta.jsonl');
    const bFile = await beta.files.create({ file: createReadStream(betaPath), purpose: 'batch' });
    const bBatch = await beta.batches.create({
      input_file_id: bFile.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });

    // A batch of beta's that names alpha's file is created, then fails: beta cannot see the file.
    const stolen = await beta.batches.create({
      input_file_id: aFile.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    expect(stolen.status).toBe('validating');
    const stolenDone = await waitForBatch(beta, stolen.id);
    expect(stolenDone.status).toBe('failed');
    expect(stolenDone.errors?.data?.[0]?.code).toBe('invalid_request');
    expect(stolenDone.errors?.data?.[0]?.message).toContain(`Cannot find file ${aFile.id}`);
    expect(stolenDone.errors?.data?.[0]?.message).not.toContain('alpha');
    expect(stolenDone.output_file_id).toBeNull();
    expect(stolenDone.request_counts).toEqual({ total: 0, completed: 0, failed: 0 });
    await expect(alpha.batches.retrieve(stolen.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(alpha.batches.cancel(bBatch.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(alpha.files.retrieve(bFile.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);

    // Lists: each project sees exactly its own objects.
    const betaFiles = await allFileIds(beta);
    const betaBatches = await allBatchIds(beta);
    const alphaFiles = await allFileIds(alpha);
    const alphaBatches = await allBatchIds(alpha);
    const bDone = await waitForBatch(beta, bBatch.id);
    expect(bDone.status).toBe('completed');
    expect(betaFiles).not.toContain(aFile.id);
    expect(betaFiles).not.toContain(aOutput);
    expect(betaFiles).toContain(bFile.id);
    expect(betaBatches).not.toContain(aBatch.id);
    expect(new Set(betaBatches)).toEqual(new Set([bBatch.id, stolen.id]));
    expect(alphaFiles.sort()).toEqual([aFile.id, aOutput].sort());
    expect(alphaBatches).toEqual([aBatch.id]);
    expect((await beta.files.list({ purpose: 'batch_output' })).data.map((f) => f.id)).toEqual([
      bDone.output_file_id,
    ]);
    expect((await alpha.files.list({ purpose: 'batch_output' })).data.map((f) => f.id)).toEqual([
      aOutput,
    ]);

    // Alpha's objects are untouched.
    const aFileAfter = await alpha.files.retrieve(aFile.id);
    expect(aFileAfter).toMatchObject({ id: aFile.id, purpose: 'batch', bytes: aFile.bytes });
    expect(await (await alpha.files.content(aFile.id)).text()).toBe(alphaBytes);
    const aBatchAfter = await alpha.batches.retrieve(aBatch.id);
    expect(TERMINAL).toContain(aBatchAfter.status);
    expect(aBatchAfter.status).toBe('completed');
    expect(aBatchAfter.cancelling_at).toBeNull();
    expect(aBatchAfter.request_counts).toEqual({ total: 2, completed: 2, failed: 0 });
    expect(aBatchAfter.metadata).toEqual({ owner: 'alpha' });
    expect((await alpha.files.retrieve(aOutput)).purpose).toBe('batch_output');
  });

  it('a project can delete its own file, and the other project still gets 404 afterwards', async () => {
    const path = writeJsonl([chatLine('x', 'x')], 'own.jsonl');
    const file = await alpha.files.create({ file: createReadStream(path), purpose: 'batch' });
    await expect(beta.files.delete(file.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    expect(await alpha.files.delete(file.id)).toEqual({
      id: file.id,
      object: 'file',
      deleted: true,
    });
    await expect(alpha.files.retrieve(file.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });
});

describe('no API keys configured (default harness)', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(async () => t.close());

  it('accepts any bearer token, all sharing one project', async () => {
    const one = t.clientWithKey('anything-at-all');
    const two = t.clientWithKey('sk-some-other-token-42');
    const path = writeJsonl([chatLine('k', 'k')]);
    const file = await one.files.create({ file: createReadStream(path), purpose: 'batch' });
    expect((await two.files.retrieve(file.id)).id).toBe(file.id);
    expect((await two.files.list()).data.map((f) => f.id)).toEqual([file.id]);
    expect((await t.client.batches.list()).data).toEqual([]);
  });
});
