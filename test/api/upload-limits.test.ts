import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
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

async function uploadBytes(t: TestServer, bytes: Buffer | string, name: string, purpose: string) {
  return t.client.files.create({
    file: await toFile(Buffer.from(bytes), name),
    purpose: purpose as OpenAI.FilePurpose,
  });
}

/** A valid JSONL batch file of exactly `size` bytes (padding inside one message). */
function batchFileOfSize(size: number): Buffer {
  const base = jsonl([chatLine('pad', '')]);
  const text = jsonl([chatLine('pad', 'p'.repeat(size - Buffer.byteLength(base)))]);
  expect(Buffer.byteLength(text)).toBe(size);
  return Buffer.from(text);
}

async function runBatch(t: TestServer, lines: readonly Line[]) {
  const file = await t.client.files.create({
    file: await toFile(Buffer.from(jsonl(lines)), 'input.jsonl'),
    purpose: 'batch',
  });
  const created = await t.client.batches.create({
    input_file_id: file.id,
    endpoint: '/v1/chat/completions',
    completion_window: '24h',
  });
  return waitForBatch(t.client, created.id);
}

/** POSTs a multipart form with fetch (lets a test send what the SDK would not). */
async function postForm(
  t: TestServer,
  form: FormData,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${t.baseURL}/files`, {
    method: 'POST',
    body: form,
    headers: { authorization: 'Bearer test-key' },
  });
  expect(res.headers.get('content-type')).toContain('application/json');
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Every file under `dir`, as paths relative to it. */
function listTree(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? listTree(join(dir, entry.name), `${prefix}${entry.name}/`)
      : [`${prefix}${entry.name}`],
  );
}

describe('upload size limits', () => {
  let t: TestServer;
  const accepted: string[] = [];
  beforeAll(async () => {
    t = await startTestServer({
      env: { OPENBATCH_MAX_BATCH_FILE_BYTES: '1000', OPENBATCH_MAX_FILE_BYTES: '3000' },
    });
  });
  afterAll(async () => t.close());

  it("400 'File is too large.' for a batch file over OPENBATCH_MAX_BATCH_FILE_BYTES", async () => {
    const err = await apiError(
      uploadBytes(t, batchFileOfSize(2048), 'big.jsonl', 'batch'),
      OpenAI.BadRequestError,
    );
    expect(err.status).toBe(400);
    expect(err.type).toBe('invalid_request_error');
    expect(envelopeMessage(err)).toBe('File is too large.');
  });

  it('accepts a batch file at the limit', async () => {
    const file = await uploadBytes(t, batchFileOfSize(1000), 'edge.jsonl', 'batch');
    expect(file.bytes).toBe(1000);
    accepted.push(file.id);
  });

  it('applies OPENBATCH_MAX_FILE_BYTES (not the batch limit) to other purposes', async () => {
    const ok = await uploadBytes(t, Buffer.alloc(2048, 'u'), 'notes.txt', 'user_data');
    expect(ok).toMatchObject({ bytes: 2048, purpose: 'user_data', filename: 'notes.txt' });
    accepted.push(ok.id);
    const err = await apiError(
      uploadBytes(t, Buffer.alloc(4096, 'u'), 'huge.txt', 'user_data'),
      OpenAI.BadRequestError,
    );
    expect(envelopeMessage(err)).toBe('File is too large.');
  });

  it('keeps no blob of a refused upload', async () => {
    expect(readdirSync(join(t.dataDir, 'blobs')).sort()).toEqual([...accepted].sort());
    // No partial write left anywhere under tmp (a shared blob folder has one subfolder per process).
    const leftovers = readdirSync(join(t.dataDir, 'tmp'), {
      recursive: true,
      withFileTypes: true,
    }).filter((entry) => entry.isFile());
    expect(leftovers).toEqual([]);
    const list = await t.client.files.list();
    expect(list.data.map((f) => f.id).sort()).toEqual([...accepted].sort());
  });
});

describe('per-line size limit', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ env: { OPENBATCH_MAX_LINE_BYTES: '2048' } });
  });
  afterAll(async () => t.close());

  it('fails an over-long line with invalid_request naming that line, other lines unaffected', async () => {
    const long = chatLine('long', 'L'.repeat(5 * 1024));
    const nearLimit = chatLine('near', 'n'.repeat(1850));
    expect(Buffer.byteLength(JSON.stringify(nearLimit))).toBeLessThanOrEqual(2048);
    const batch = await runBatch(t, [
      chatLine('a', 'x'),
      long,
      '{bad json',
      nearLimit,
      { ...chatLine('b', 'y'), url: '/v1/embeddings' },
    ]);
    expect(batch.status).toBe('failed');
    expect(batch.request_counts).toEqual({ total: 0, completed: 0, failed: 0 });
    expect(batch.errors?.data).toEqual([
      {
        code: 'invalid_request',
        message: 'This line exceeds the maximum line size of 2048 bytes.',
        param: null,
        line: 2,
      },
      {
        code: 'invalid_json_line',
        message: 'This line is not parseable as valid JSON.',
        param: null,
        line: 3,
      },
      {
        code: 'invalid_url',
        message: 'The URL provided for this request does not match the batch endpoint.',
        param: 'url',
        line: 5,
      },
    ]);
  });

  it('reports an over-long first line (which passes the upload check) as line 1', async () => {
    const batch = await runBatch(t, [chatLine('long', 'L'.repeat(5 * 1024)), chatLine('a', 'x')]);
    expect(batch.status).toBe('failed');
    expect(batch.errors?.data).toEqual([
      {
        code: 'invalid_request',
        message: 'This line exceeds the maximum line size of 2048 bytes.',
        param: null,
        line: 1,
      },
    ]);
  });
});

describe('upload format, purpose, expiry, download and delete', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(async () => t.close());

  it('fails a line nested 10,000 deep with invalid_request, without a 500, other lines unaffected', async () => {
    const deep = `{"custom_id":"deep","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":${'['.repeat(10_000)}${']'.repeat(10_000)}}}`;
    const batch = await runBatch(t, [
      chatLine('a', 'x'),
      deep,
      '{oops',
      { custom_id: 'c', method: 'POST', body: {} },
      chatLine('d', 'y'),
    ]);
    expect(batch.status).toBe('failed');
    expect(batch.errors?.data).toEqual([
      {
        code: 'invalid_request',
        message: 'This line exceeds the maximum JSON nesting depth of 64.',
        param: null,
        line: 2,
      },
      {
        code: 'invalid_json_line',
        message: 'This line is not parseable as valid JSON.',
        param: null,
        line: 3,
      },
      {
        code: 'missing_required_parameter',
        message: "Missing required parameter: 'url'.",
        param: 'url',
        line: 4,
      },
    ]);
    // The server is still healthy.
    expect((await t.client.batches.retrieve(batch.id)).status).toBe('failed');
  });

  it('refuses a batch upload that is not .jsonl', async () => {
    const good = jsonl([chatLine('a', 'x')]);
    const notOneObject =
      /^Invalid file format for Batch API\. Must be \.jsonl: its first line is not one JSON object\. .*single line/;
    const pretty = JSON.stringify(chatLine('a', 'x'), null, 2) + '\n';
    for (const [content, name, message] of [
      [good, 'data.csv', /^Invalid file format for Batch API\. Must be \.jsonl$/],
      [good, 'data.json', /^Invalid file format for Batch API\. Must be \.jsonl$/],
      ['not json at all\n' + good, 'input.jsonl', notOneObject],
      ['["an array"]\n' + good, 'input.jsonl', notOneObject],
      [pretty, 'pretty.jsonl', notOneObject],
      [
        '',
        'empty.jsonl',
        /^Invalid file format for Batch API\. Must be \.jsonl: the file holds no line\.$/,
      ],
    ] as const) {
      const err = await apiError(uploadBytes(t, content, name, 'batch'), OpenAI.BadRequestError);
      expect(err.status).toBe(400);
      expect(err.type).toBe('invalid_request_error');
      expect(envelopeMessage(err)).toMatch(message);
    }
    // Only purpose=batch is format-checked.
    expect((await uploadBytes(t, 'a,b\n1,2\n', 'data.csv', 'user_data')).filename).toBe('data.csv');
  });

  it('accepts a batch file whose later lines are bad (only the start is checked at upload)', async () => {
    const file = await uploadBytes(t, jsonl([chatLine('a', 'x'), '{bad']), 'mixed.jsonl', 'batch');
    expect(file).toMatchObject({ purpose: 'batch', status: 'processed', filename: 'mixed.jsonl' });
  });

  it("400 'Invalid value for purpose.' for an unknown purpose", async () => {
    const err = await apiError(
      uploadBytes(t, jsonl([chatLine('a', 'x')]), 'input.jsonl', 'batches'),
      OpenAI.BadRequestError,
    );
    expect(err.status).toBe(400);
    expect(err.param).toBe('purpose');
    expect(envelopeMessage(err)).toBe('Invalid value for purpose.');
  });

  it('400 when purpose or file is missing', async () => {
    const noPurpose = new FormData();
    noPurpose.append('file', new Blob([jsonl([chatLine('a', 'x')])]), 'input.jsonl');
    const a = await postForm(t, noPurpose);
    expect(a.status).toBe(400);
    expect(a.body).toEqual({
      error: {
        message: "Missing required parameter: 'purpose'.",
        type: 'invalid_request_error',
        param: 'purpose',
        code: 'missing_required_parameter',
      },
    });

    const noFile = new FormData();
    noFile.append('purpose', 'batch');
    const b = await postForm(t, noFile);
    expect(b.status).toBe(400);
    expect(b.body.error).toMatchObject({
      param: 'file',
      code: 'missing_required_parameter',
      type: 'invalid_request_error',
    });
  });

  /** Uploads `content` under a path-like multipart filename with fetch (the SDK would strip the path). */
  async function uploadPathLike(content: string): Promise<Record<string, unknown>> {
    const form = new FormData();
    form.append('purpose', 'batch');
    form.append('file', new Blob([content]), '../../etc/passwd.jsonl');
    const { status, body } = await postForm(t, form);
    expect(status).toBe(200);
    return body;
  }

  it('stores a path-like filename harmlessly: the blob is named by the file id', async () => {
    const content = jsonl([chatLine('a', 'x')]);
    const body = await uploadPathLike(content);
    const id = body.id as string;
    expect(id).toMatch(/^file-[A-Za-z0-9]{22}$/);
    // Nothing landed outside the data dir, whatever the name resolves to from blobs/, tmp/ or the cwd.
    for (const base of [
      join(t.dataDir, 'blobs'),
      join(t.dataDir, 'tmp'),
      t.dataDir,
      process.cwd(),
    ]) {
      expect(existsSync(resolve(base, '../../etc/passwd.jsonl'))).toBe(false);
    }
    expect(existsSync(join(t.dataDir, 'blobs', id))).toBe(true);
    expect(listTree(t.dataDir).filter((p) => p.includes('passwd'))).toEqual([]);
    const downloaded = Buffer.from(await (await t.client.files.content(id)).arrayBuffer());
    expect(downloaded.toString('utf8')).toBe(content);
  });

  it('echoes a path-like filename exactly as the client sent it', async () => {
    const body = await uploadPathLike(jsonl([chatLine('a', 'x')]));
    expect(body.filename).toBe('../../etc/passwd.jsonl');
    expect((await t.client.files.retrieve(body.id as string)).filename).toBe(
      '../../etc/passwd.jsonl',
    );
  });

  it('the SDK itself sends only the basename of a path-like name', async () => {
    const file = await uploadBytes(
      t,
      jsonl([chatLine('a', 'x')]),
      '../../etc/passwd.jsonl',
      'batch',
    );
    expect(file.filename).toBe('passwd.jsonl');
    expect(existsSync(join(t.dataDir, 'blobs', file.id))).toBe(true);
  });

  it('sets expires_at = created_at + seconds for expires_after, and 400s out of range', async () => {
    const content = jsonl([chatLine('a', 'x')]);
    const file = await t.client.files.create({
      file: await toFile(Buffer.from(content), 'exp.jsonl'),
      purpose: 'batch',
      expires_after: { anchor: 'created_at', seconds: 3600 },
    });
    expect(file.expires_at).toBe(file.created_at + 3600);

    const byDefault = await uploadBytes(t, content, 'default.jsonl', 'batch');
    expect(byDefault.expires_at).toBe(byDefault.created_at + 30 * 24 * 3600);

    for (const seconds of [10, 3599, 2_592_001]) {
      const err = await apiError(
        t.client.files.create({
          file: await toFile(Buffer.from(content), 'exp.jsonl'),
          purpose: 'batch',
          expires_after: { anchor: 'created_at', seconds },
        }),
        OpenAI.BadRequestError,
      );
      expect(err.param).toBe('expires_after.seconds');
      expect(err.code).toBe('invalid_value');
    }
  });

  it("400 'Not allowed to download files of purpose: user_data'", async () => {
    const file = await uploadBytes(t, 'private notes', 'notes.txt', 'user_data');
    const err = await apiError(t.client.files.content(file.id), OpenAI.BadRequestError);
    expect(err.status).toBe(400);
    expect(err.type).toBe('invalid_request_error');
    expect(envelopeMessage(err)).toBe('Not allowed to download files of purpose: user_data');
  });

  it('downloads the exact bytes uploaded as application/octet-stream', async () => {
    const bytes = Buffer.from(
      `${JSON.stringify(chatLine('a', 'héllo 日本 👋'))}\r\n\r\n${JSON.stringify(chatLine('b', 'tab\there'))}\n   \n`,
      'utf8',
    );
    const file = await uploadBytes(t, bytes, 'exact.jsonl', 'batch');
    expect(file.bytes).toBe(bytes.length);
    const viaSdk = Buffer.from(await (await t.client.files.content(file.id)).arrayBuffer());
    expect(viaSdk.equals(bytes)).toBe(true);

    const res = await fetch(`${t.baseURL}/files/${file.id}/content`, {
      headers: { authorization: 'Bearer test-key' },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(res.headers.get('content-length')).toBe(String(bytes.length));
    expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true);
  });

  it('deletes a file: {id, object, deleted}, then 404 and the blob is gone', async () => {
    const file = await uploadBytes(t, jsonl([chatLine('a', 'x')]), 'gone.jsonl', 'batch');
    expect(existsSync(join(t.dataDir, 'blobs', file.id))).toBe(true);
    expect(await t.client.files.delete(file.id)).toEqual({
      id: file.id,
      object: 'file',
      deleted: true,
    });
    const err = await apiError(t.client.files.retrieve(file.id), OpenAI.NotFoundError);
    expect(envelopeMessage(err)).toBe(`No such File object: ${file.id}`);
    await apiError(t.client.files.content(file.id), OpenAI.NotFoundError);
    await apiError(t.client.files.delete(file.id), OpenAI.NotFoundError);
    expect(existsSync(join(t.dataDir, 'blobs', file.id))).toBe(false);
  });
});
