import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import OpenAI, { type APIError } from 'openai';
import { toFile } from 'openai/uploads';
import {
  chatLine,
  startTestServer,
  waitForBatch,
  type TestServer,
} from '../helpers/test-server.ts';

type Line = object | string;

const jsonl = (lines: readonly Line[]): string =>
  lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n';

async function upload(
  t: TestServer,
  lines: readonly Line[],
  name = 'input.jsonl',
): Promise<OpenAI.Files.FileObject> {
  return t.client.files.create({
    file: await toFile(Buffer.from(jsonl(lines)), name),
    purpose: 'batch',
  });
}

/** Uploads `lines`, runs a chat batch over them and returns the batch once terminal. */
async function runBatch(
  t: TestServer,
  lines: readonly Line[],
  endpoint: OpenAI.Batches.BatchCreateParams['endpoint'] = '/v1/chat/completions',
) {
  const file = await upload(t, lines);
  const created = await t.client.batches.create({
    input_file_id: file.id,
    endpoint,
    completion_window: '24h',
  });
  expect(created.status).toBe('validating');
  return waitForBatch(t.client, created.id);
}

/** The batch failed during validation: no items ran, no files were written. */
function expectValidationFailure(batch: OpenAI.Batches.Batch): OpenAI.Batches.BatchError[] {
  expect(batch.status).toBe('failed');
  expect(typeof batch.failed_at).toBe('number');
  expect(batch.failed_at).toBeGreaterThanOrEqual(batch.created_at);
  expect(batch.in_progress_at).toBeNull();
  expect(batch.completed_at).toBeNull();
  expect(batch.request_counts).toEqual({ total: 0, completed: 0, failed: 0 });
  expect(batch.output_file_id).toBeNull();
  expect(batch.error_file_id).toBeNull();
  expect(batch.errors?.object).toBe('list');
  const data = batch.errors?.data ?? [];
  for (const entry of data)
    expect(Object.keys(entry).sort()).toEqual(['code', 'line', 'message', 'param']);
  return data;
}

async function apiError<T extends abstract new (...args: never[]) => APIError>(
  promise: Promise<unknown>,
  cls: T,
): Promise<InstanceType<T>> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(cls);
    return err as InstanceType<T>;
  }
  throw new Error(`expected ${cls.name}, but the call succeeded`);
}

const envelopeMessage = (err: APIError): string | undefined =>
  (err.error as { message?: string } | undefined)?.message;

const withBody = (customId: string, body: Record<string, unknown>) => ({
  custom_id: customId,
  method: 'POST',
  url: '/v1/chat/completions',
  body,
});
const chatBody = (extra: Record<string, unknown> = {}) => ({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: 'hi' }],
  ...extra,
});
function without(line: object, key: string): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...line };
  delete copy[key];
  return copy;
}

const MISSING_MESSAGE = (key: string) => `Missing required parameter: '${key}'.`;

describe('per-line validation errors (batch fails while validating)', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({
      configFile: {
        upstreams: [
          { name: 'sim', baseUrl: 'SIM/v1', models: ['gpt-4o-mini', 'text-embedding-*'] },
        ],
      },
    });
  });
  afterAll(async () => t.close());

  it('lists every bad line of one file, in line order, with 1-based physical line numbers', async () => {
    const lines: Line[] = [
      chatLine('ok-1', 'hello'), // 1
      '{"custom_id": "broken", "method": "POST",', // 2
      '', // 3 blank: numbered, otherwise ignored
      without(chatLine('x', 'a'), 'custom_id'), // 4
      without(chatLine('no-method', 'a'), 'method'), // 5
      without(chatLine('no-url', 'a'), 'url'), // 6
      without(chatLine('no-body', 'a'), 'body'), // 7
      { ...chatLine('wrong-url', 'a'), url: '/v1/embeddings' }, // 8
      withBody('streams', chatBody({ stream: true })), // 9
      chatLine('unknown-model', 'a', 'gpt-4o'), // 10
      withBody('no-model', { messages: [{ role: 'user', content: 'hi' }] }), // 11
      withBody('no-messages', { model: 'gpt-4o-mini' }), // 12
      withBody('api-base', chatBody({ api_base: 'http://127.0.0.1:1/v1' })), // 13
      withBody('base-url', chatBody({ base_url: 'http://127.0.0.1:1/v1' })), // 14
      withBody('api-key', chatBody({ api_key: 'sk-stolen' })), // 15
      withBody('extra-headers', chatBody({ extra_headers: { authorization: 'Bearer x' } })), // 16
      chatLine('ok-1', 'same id again'), // 17
      '   \t', // 18 whitespace only: ignored
      chatLine('ok-2', 'fine'), // 19
    ];
    const batch = await runBatch(t, lines);
    const errors = expectValidationFailure(batch);
    expect(errors.map((e) => e.line)).toEqual([
      2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17,
    ]);
    expect(errors.slice(0, 10)).toEqual([
      {
        code: 'invalid_json_line',
        message: 'This line is not parseable as valid JSON.',
        param: null,
        line: 2,
      },
      {
        code: 'missing_required_parameter',
        message: MISSING_MESSAGE('custom_id'),
        param: 'custom_id',
        line: 4,
      },
      {
        code: 'missing_required_parameter',
        message: MISSING_MESSAGE('method'),
        param: 'method',
        line: 5,
      },
      {
        code: 'missing_required_parameter',
        message: MISSING_MESSAGE('url'),
        param: 'url',
        line: 6,
      },
      {
        code: 'missing_required_parameter',
        message: MISSING_MESSAGE('body'),
        param: 'body',
        line: 7,
      },
      {
        code: 'invalid_url',
        message: 'The URL provided for this request does not match the batch endpoint.',
        param: 'url',
        line: 8,
      },
      {
        code: 'streaming_unsupported',
        message: 'Chat Completions: Streaming is not supported in the Batch API.',
        param: 'body.stream',
        line: 9,
      },
      {
        code: 'model_not_found',
        message: "The provided model 'gpt-4o' is not supported by the Batch API.",
        param: 'body.model',
        line: 10,
      },
      {
        code: 'invalid_request',
        message: 'Model parameter is required.',
        param: 'body.model',
        line: 11,
      },
      {
        code: 'invalid_request',
        message: 'Messages parameter is required.',
        param: 'body.messages',
        line: 12,
      },
    ]);
    const forbidden = errors.slice(10, 14);
    expect(forbidden.map((e) => [e.code, e.param, e.line])).toEqual([
      ['invalid_request', 'body.api_base', 13],
      ['invalid_request', 'body.base_url', 14],
      ['invalid_request', 'body.api_key', 15],
      ['invalid_request', 'body.extra_headers', 16],
    ]);
    for (const e of forbidden) expect(e.message).toContain(`'${e.param?.slice('body.'.length)}'`);
    const duplicate = errors[14];
    expect(duplicate).toMatchObject({ code: 'duplicate_custom_id', param: 'custom_id', line: 17 });
    expect(duplicate?.message).toContain('custom_id');
    // Nothing was sent upstream for a batch that failed validation.
    expect(t.sim.calls().length).toBe(0);
  });

  it('reports a single invalid_json_line after a valid first line', async () => {
    const batch = await runBatch(t, [chatLine('a', 'x'), '{not json']);
    expect(expectValidationFailure(batch)).toEqual([
      {
        code: 'invalid_json_line',
        message: 'This line is not parseable as valid JSON.',
        param: null,
        line: 2,
      },
    ]);
  });

  it('fails the whole batch when only one of two lines streams', async () => {
    const batch = await runBatch(t, [
      chatLine('a', 'x'),
      withBody('b', chatBody({ stream: true })),
    ]);
    expect(expectValidationFailure(batch)).toEqual([
      {
        code: 'streaming_unsupported',
        message: 'Chat Completions: Streaming is not supported in the Batch API.',
        param: 'body.stream',
        line: 2,
      },
    ]);
  });

  it('reports the second occurrence of a duplicate custom_id, counting blank lines', async () => {
    const batch = await runBatch(t, [
      chatLine('dup', 'x'),
      '',
      chatLine('other', 'y'),
      '',
      chatLine('dup', 'z'),
    ]);
    const errors = expectValidationFailure(batch);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'duplicate_custom_id', param: 'custom_id', line: 5 });
  });

  it('reports model_not_found only for models no upstream serves (globs route)', async () => {
    const embedding = (id: string, model: string) => ({
      custom_id: id,
      method: 'POST',
      url: '/v1/embeddings',
      body: { model, input: 'text' },
    });
    const failed = await runBatch(
      t,
      [
        embedding('a', 'text-embedding-3-small'),
        embedding('b', 'gpt-4o-mini-embed'),
        embedding('c', 'text-embedding-ada-002'),
      ],
      '/v1/embeddings',
    );
    expect(expectValidationFailure(failed)).toEqual([
      {
        code: 'model_not_found',
        message: "The provided model 'gpt-4o-mini-embed' is not supported by the Batch API.",
        param: 'body.model',
        line: 2,
      },
    ]);
    const ok = await runBatch(
      t,
      [embedding('a', 'text-embedding-3-small'), embedding('c', 'text-embedding-ada-002')],
      '/v1/embeddings',
    );
    expect(ok.status).toBe('completed');
    expect(ok.request_counts).toEqual({ total: 2, completed: 2, failed: 0 });
  });

  it('blank lines alone do not make a batch fail', async () => {
    const batch = await runBatch(t, [chatLine('a', 'x'), '', '', chatLine('b', 'y'), '  ']);
    expect(batch.status).toBe('completed');
    expect(batch.request_counts).toEqual({ total: 2, completed: 2, failed: 0 });
    expect(batch.errors).toBeNull();
  });

  it('refuses at upload a batch file that holds only blank lines (so empty_file cannot arrive via upload)', async () => {
    const err = await apiError(
      t.client.files.create({
        file: await toFile(Buffer.from('\n\n   \n\r\n'), 'empty.jsonl'),
        purpose: 'batch',
      }),
      OpenAI.BadRequestError,
    );
    expect(envelopeMessage(err)).toBe(
      'Invalid file format for Batch API. Must be .jsonl: the file holds no line.',
    );
  });

  it('fails with empty_file when the stored input has no non-blank line', async () => {
    // The upload check refuses such a file (previous test), so the stored blob is replaced on disk
    // after a valid upload to reach the ingest path that reports empty_file.
    const file = await upload(t, [chatLine('a', 'x')]);
    writeFileSync(join(t.dataDir, 'blobs', file.id), '\n\n   \n\r\n');
    const created = await t.client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    const batch = await waitForBatch(t.client, created.id);
    expect(expectValidationFailure(batch)).toEqual([
      { code: 'empty_file', message: 'The batch input file is empty.', param: null, line: null },
    ]);
  });

  it('creates a batch for an unknown input_file_id, then fails it with invalid_request on file_id', async () => {
    const created = await t.client.batches.create({
      input_file_id: 'file-doesnotexist0000000000',
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    expect(created.status).toBe('validating');
    const batch = await waitForBatch(t.client, created.id);
    const errors = expectValidationFailure(batch);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'invalid_request', param: 'file_id', line: null });
    expect(errors[0]?.message).toContain('Cannot find file file-doesnotexist0000000000');
  });
});

describe('too_many_tasks', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ env: { OPENBATCH_MAX_LINES: '3' } });
  });
  afterAll(async () => t.close());

  it('fails a batch with more requests than OPENBATCH_MAX_LINES', async () => {
    const batch = await runBatch(
      t,
      ['a', 'b', 'c', 'd'].map((id) => chatLine(id, id)),
    );
    expect(expectValidationFailure(batch)).toEqual([
      {
        code: 'too_many_tasks',
        message: 'The batch input file contains more than 3 requests.',
        param: null,
        line: null,
      },
    ]);
  });

  it('lists line errors before the file-level too_many_tasks', async () => {
    const batch = await runBatch(t, [
      chatLine('a', 'a'),
      '{bad',
      chatLine('c', 'c'),
      chatLine('d', 'd'),
    ]);
    expect(expectValidationFailure(batch).map((e) => [e.code, e.line])).toEqual([
      ['invalid_json_line', 2],
      ['too_many_tasks', null],
    ]);
  });

  it('accepts exactly the limit, blank lines not counted', async () => {
    const batch = await runBatch(t, [
      chatLine('a', 'a'),
      '',
      chatLine('b', 'b'),
      '',
      chatLine('c', 'c'),
      '',
    ]);
    expect(batch.status).toBe('completed');
    expect(batch.request_counts).toEqual({ total: 3, completed: 3, failed: 0 });
  });
});

describe('synchronous errors of the batches and files API', () => {
  let t: TestServer;
  let fileId: string;
  beforeAll(async () => {
    t = await startTestServer();
    fileId = (await upload(t, [chatLine('a', 'x')])).id;
  });
  afterAll(async () => t.close());

  const create = (params: Record<string, unknown>) =>
    t.client.batches.create(params as unknown as OpenAI.Batches.BatchCreateParams);
  const valid = () => ({
    input_file_id: fileId,
    endpoint: '/v1/chat/completions',
    completion_window: '24h',
  });

  it.each(['input_file_id', 'endpoint', 'completion_window'])(
    '400 missing_required_parameter for a missing %s',
    async (key) => {
      const params: Record<string, unknown> = valid();
      delete params[key];
      const err = await apiError(create(params), OpenAI.BadRequestError);
      expect(err.status).toBe(400);
      expect(err.type).toBe('invalid_request_error');
      expect(err.code).toBe('missing_required_parameter');
      expect(err.param).toBe(key);
      expect(envelopeMessage(err)).toBe(`Missing required parameter: '${key}'.`);
    },
  );

  it('400 invalid_value for an unknown endpoint', async () => {
    const err = await apiError(
      create({ ...valid(), endpoint: '/v1/invalid/endpoint' }),
      OpenAI.BadRequestError,
    );
    expect(err.status).toBe(400);
    expect(err.type).toBe('invalid_request_error');
    expect(err.code).toBe('invalid_value');
    expect(err.param).toBe('endpoint');
    expect(envelopeMessage(err)).toMatch(
      /^Invalid value: '\/v1\/invalid\/endpoint'\. Supported values are: /,
    );
    expect(envelopeMessage(err)).toContain("'/v1/chat/completions'");
  });

  it('accepts completion_window 1h (extension) and sets expires_at accordingly', async () => {
    const batch = await create({ ...valid(), completion_window: '1h' });
    expect(batch.completion_window).toBe('1h');
    expect(batch.expires_at).toBe(batch.created_at + 3600);
  });

  it.each(['5s', '169h', '', 'abc'])(
    '400 invalid_value for completion_window %j',
    async (completion_window) => {
      const err = await apiError(create({ ...valid(), completion_window }), OpenAI.BadRequestError);
      expect(err.status).toBe(400);
      expect(err.type).toBe('invalid_request_error');
      expect(err.code).toBe('invalid_value');
      expect(err.param).toBe('completion_window');
    },
  );

  it('400 invalid_type for a metadata value that is not a string', async () => {
    const err = await apiError(
      create({ ...valid(), metadata: { tags: ['a', 'b'] } }),
      OpenAI.BadRequestError,
    );
    expect(err.code).toBe('invalid_type');
    expect(err.param).toBe('metadata.tags');
    expect(err.type).toBe('invalid_request_error');
    expect(envelopeMessage(err)).toBe(
      "Invalid type for 'metadata.tags': expected a string, but got an array instead.",
    );
  });

  it('400 for metadata over 16 pairs, keys over 64 and values over 512 characters; the limits themselves pass', async () => {
    const pairs = (n: number) =>
      Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, `v${i}`]));
    const tooMany = await apiError(
      create({ ...valid(), metadata: pairs(17) }),
      OpenAI.BadRequestError,
    );
    expect(tooMany.param).toBe('metadata');
    const longKey = await apiError(
      create({ ...valid(), metadata: { ['k'.repeat(65)]: 'v' } }),
      OpenAI.BadRequestError,
    );
    expect(longKey.param).toBe('metadata');
    const longValue = await apiError(
      create({ ...valid(), metadata: { note: 'v'.repeat(513) } }),
      OpenAI.BadRequestError,
    );
    expect(longValue.param).toBe('metadata.note');
    for (const err of [tooMany, longKey, longValue]) expect(err.type).toBe('invalid_request_error');

    const atLimit = { ...pairs(15), ['k'.repeat(64)]: 'v'.repeat(512) };
    const ok = await create({ ...valid(), metadata: atLimit });
    expect(ok.metadata).toEqual(atLimit);
  });

  it('400 when the input file was uploaded with another purpose', async () => {
    const other = await t.client.files.create({
      file: await toFile(Buffer.from('notes'), 'notes.txt'),
      purpose: 'user_data',
    });
    const err = await apiError(
      create({ ...valid(), input_file_id: other.id }),
      OpenAI.BadRequestError,
    );
    expect(err.param).toBe('input_file_id');
    expect(err.code).toBe('invalid_value');
  });

  it('404 NotFoundError for an unknown batch id (retrieve and cancel)', async () => {
    const retrieve = await apiError(
      t.client.batches.retrieve('batch_unknown'),
      OpenAI.NotFoundError,
    );
    expect(retrieve.status).toBe(404);
    expect(retrieve.type).toBe('invalid_request_error');
    expect(envelopeMessage(retrieve)).toContain('batch_unknown');
    const cancel = await apiError(t.client.batches.cancel('batch_unknown'), OpenAI.NotFoundError);
    expect(cancel.status).toBe(404);
  });

  it("404 'No such File object' with param id for an unknown file id", async () => {
    // One call at a time: a rejection must not wait unobserved while an earlier one is awaited.
    for (const call of [
      () => t.client.files.retrieve('file-nope'),
      () => t.client.files.content('file-nope'),
      () => t.client.files.delete('file-nope'),
    ]) {
      const err = await apiError(call(), OpenAI.NotFoundError);
      expect(err.status).toBe(404);
      expect(err.type).toBe('invalid_request_error');
      expect(err.param).toBe('id');
      expect(envelopeMessage(err)).toBe('No such File object: file-nope');
    }
  });

  it('409 ConflictError when cancelling a completed or failed batch', async () => {
    const created = await create(valid());
    const done = await waitForBatch(t.client, created.id);
    expect(done.status).toBe('completed');
    const err = await apiError(t.client.batches.cancel(done.id), OpenAI.ConflictError);
    expect(err.status).toBe(409);
    expect(err.type).toBe('invalid_request_error');
    expect(envelopeMessage(err)).toBe("Cannot cancel a batch with status 'completed'.");
    expect((await t.client.batches.retrieve(done.id)).status).toBe('completed');

    const bad = await upload(t, [chatLine('a', 'x'), '{bad']);
    const failed = await waitForBatch(
      t.client,
      (await create({ ...valid(), input_file_id: bad.id })).id,
    );
    expect(failed.status).toBe('failed');
    const failedErr = await apiError(t.client.batches.cancel(failed.id), OpenAI.ConflictError);
    expect(envelopeMessage(failedErr)).toBe("Cannot cancel a batch with status 'failed'.");
  });

  it('answers an unparsable JSON body with the four-key error envelope', async () => {
    const res = await fetch(`${t.baseURL}/batches`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer test-key' },
      body: '{"input_file_id": "file-x", ',
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toContain('application/json');
    const body = (await res.json()) as { error: Record<string, unknown> };
    expect(Object.keys(body)).toEqual(['error']);
    expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
    expect(body.error.type).toBe('invalid_request_error');
    expect(body.error.message).toMatch(/^We could not parse the JSON body of your request\./);
    expect(body.error.param).toBeNull();
    expect(body.error.code).toBeNull();
  });

  it('answers an unknown route with 404 Invalid URL', async () => {
    const res = await fetch(`${t.baseURL}/foo`, {
      method: 'POST',
      headers: { authorization: 'Bearer test-key' },
    });
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toContain('application/json');
    expect(await res.json()).toEqual({
      error: {
        message: 'Invalid URL (POST /v1/foo)',
        type: 'invalid_request_error',
        param: null,
        code: null,
      },
    });
  });
});
