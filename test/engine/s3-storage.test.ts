/**
 * openbatch with its files in S3 (s3rver, a real S3-compatible server, in a child process):
 * uploads through the API go up as multipart uploads and come back byte-identical, an S3 server
 * killed mid-upload fails the upload cleanly (503, nothing visible) and a new one works once it is
 * back, and a batch runs end to end on SQLite + S3 and on PostgreSQL + S3.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { toFile } from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { captureLogger } from '../helpers/capture-logger.ts';
import { createDatabase } from '../helpers/postgres-server.ts';
import { spawnServer } from '../helpers/server-process.ts';
import {
  S3_TEST_CREDENTIALS,
  startRecordingProxy,
  startS3Server,
  type RecordingProxy,
  type S3Server,
} from '../helpers/s3-server.ts';
import {
  chatLine,
  readLines,
  startTestServer,
  waitForBatch,
  type TestServer,
} from '../helpers/test-server.ts';

const MiB = 1024 * 1024;

let s3: S3Server;
let proxy: RecordingProxy;
const servers: TestServer[] = [];
beforeAll(async () => {
  s3 = await startS3Server();
  proxy = await startRecordingProxy(s3.endpoint);
});
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});
afterAll(async () => {
  await proxy.close();
  await s3.stop();
});

/**
 * A server keeping its files under `s3://bucket/<prefix>/`, reached through the recording proxy.
 * The SDK reads the AWS_* variables from the process environment (as `openbatch serve` would).
 */
async function serverOnS3(
  prefix: string,
  extra: Record<string, string> = {},
  logger?: ReturnType<typeof captureLogger>,
  latencyMs = 0,
) {
  const env = {
    ...s3.env(`${prefix}/`),
    AWS_ENDPOINT_URL_S3: proxy.endpoint,
    OPENBATCH_S3_PART_BYTES: String(5 * MiB),
    ...extra,
  };
  Object.assign(process.env, env);
  const server = await startTestServer({
    env,
    sim: { latencyMs },
    ...(logger ? { logger } : {}),
  });
  servers.push(server);
  return server;
}

async function objectsUnder(prefix: string): Promise<string[]> {
  const client = new S3Client({ region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true });
  try {
    const res = await client.send(
      new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `${prefix}/` }),
    );
    return (res.Contents ?? []).map((o) => o.Key!.slice(prefix.length + 1)).sort();
  } finally {
    client.destroy();
  }
}

/** JSONL chat lines of about `bytes` bytes in all. */
function jsonlOf(bytes: number): Buffer {
  const lines: string[] = [];
  let total = 0;
  for (let i = 0; total < bytes; i++) {
    const line = JSON.stringify(chatLine(`line-${i}`, `question ${i} ${'x'.repeat(900)}`)) + '\n';
    lines.push(line);
    total += line.length;
  }
  return Buffer.from(lines.join(''));
}

const partPuts = (pattern: string) =>
  proxy.requests.filter(
    (r) => r.startsWith('PUT ') && r.includes(pattern) && /partNumber=/.test(r),
  );

describe('files on S3', () => {
  it('a 12 MB upload goes up in 5 MiB parts and downloads byte-identical', async () => {
    const server = await serverOnS3('upload');
    const content = jsonlOf(12 * MiB);
    const file = await server.client.files.create({
      file: await toFile(content, 'big.jsonl'),
      purpose: 'batch',
    });
    expect(file.bytes).toBe(content.length);
    expect(partPuts(`/upload/${file.id}?`)).toHaveLength(3);
    const back = Buffer.from(await (await server.client.files.content(file.id)).arrayBuffer());
    expect(back.equals(content)).toBe(true);
    expect(await objectsUnder('upload')).toEqual([file.id]);
    // Nothing of it on the local disk.
    expect(existsSync(join(server.dataDir, 'blobs'))).toBe(false);
  });

  it('S3 killed mid-upload: 503, nothing visible; after a restart a new upload succeeds', async () => {
    const logger = captureLogger();
    const server = await serverOnS3('restart', {}, logger);
    const boundary = 'openbatchboundary42';
    const killed = { done: false };
    async function* body() {
      yield Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n` +
          `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="cut.jsonl"\r\n` +
          `Content-Type: application/octet-stream\r\n\r\n`,
      );
      const chunk = jsonlOf(MiB);
      for (let sent = 0; sent < 40; sent++) {
        yield chunk;
        // Once the first part is on its way, the S3 server dies (kill -9).
        if (!killed.done && partPuts('/restart/').length > 0) {
          await s3.kill();
          killed.done = true;
        }
      }
      yield Buffer.from(`\r\n--${boundary}--\r\n`);
    }
    const res = await fetch(`${server.baseURL}/files`, {
      method: 'POST',
      headers: {
        authorization: 'Bearer test-key',
        'content-type': `multipart/form-data; boundary=${boundary}`,
      },
      body: ReadableStream.from(body()),
      duplex: 'half',
    });
    const text = await res.text();
    await s3.restart();
    expect(killed.done).toBe(true);
    expect(res.status).toBe(503);
    const envelope = JSON.parse(text) as { error: { type: string; message: string } };
    expect(envelope.error.type).toBe('server_error');
    expect(envelope.error.message).toMatch(/file storage/);
    expect(text).not.toContain(S3_TEST_CREDENTIALS.AWS_SECRET_ACCESS_KEY);
    // The operator learns why (the failed upload is logged), and no secret is in the log.
    expect(logger.entries.some((e) => e.level === 'warn' && e.fields.op === 'upload')).toBe(true);
    expect(JSON.stringify(logger.entries)).not.toContain(S3_TEST_CREDENTIALS.AWS_SECRET_ACCESS_KEY);
    expect((await server.client.files.list()).data).toEqual([]);

    expect(await objectsUnder('restart')).toEqual([]); // the cut upload never completed
    const content = jsonlOf(6 * MiB);
    const file = await server.client.files.create({
      file: await toFile(content, 'again.jsonl'),
      purpose: 'batch',
    });
    const back = Buffer.from(await (await server.client.files.content(file.id)).arrayBuffer());
    expect(back.equals(content)).toBe(true);
    expect(await objectsUnder('restart')).toEqual([file.id]);
  });
});

describe.each(['SQLite', 'PostgreSQL'])('a batch on %s + S3', (storeName) => {
  it('reads its input from S3 and writes its output and error files there', async () => {
    const prefix = `batch-${storeName.toLowerCase()}`;
    const db =
      storeName === 'PostgreSQL'
        ? { OPENBATCH_DATABASE_URL: await createDatabase(inject('postgresUrl'), 's3') }
        : {};
    const server = await serverOnS3(prefix, db);
    const lines = [
      ...Array.from({ length: 30 }, (_, i) => chatLine(`ok-${i}`, `question ${i}`)),
      chatLine('bad-a', 'invalid [sim:status=400;id=bad-a]'),
      chatLine('bad-b', 'invalid [sim:status=400;id=bad-b]'),
    ];
    const input = await server.client.files.create({
      file: await toFile(
        Buffer.from(lines.map((l) => JSON.stringify(l)).join('\n') + '\n'),
        'in.jsonl',
      ),
      purpose: 'batch',
    });
    const created = await server.client.batches.create({
      input_file_id: input.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    const batch = await waitForBatch(server.client, created.id);
    expect(batch.status).toBe('completed');
    expect(batch.request_counts).toMatchObject({ total: 32, completed: 30, failed: 2 });
    const output = await readLines(server.client, batch.output_file_id);
    const errors = await readLines(server.client, batch.error_file_id);
    expect(output.map((l) => l.custom_id).sort()).toEqual(
      Array.from({ length: 30 }, (_, i) => `ok-${i}`).sort(),
    );
    expect(errors.map((l) => l.custom_id).sort()).toEqual(['bad-a', 'bad-b']);
    expect(await objectsUnder(prefix)).toEqual(
      [input.id, batch.output_file_id!, batch.error_file_id!].sort(),
    );
    expect(existsSync(join(server.dataDir, 'blobs'))).toBe(false);
    // SQLite's spools were published to S3 and removed from the local disk.
    const spoolDir = join(server.dataDir, 'spool');
    expect(existsSync(spoolDir) ? readdirSync(spoolDir) : []).toEqual([]);
  });
});

describe('S3 unreachable while a batch runs', () => {
  it('downloads answer 503, the batch waits in finalizing and completes once S3 is back', async () => {
    const server = await serverOnS3(
      'outage',
      { OPENBATCH_UPSTREAM_MAX_CONCURRENCY: '4' },
      undefined,
      200,
    );
    const lines = Array.from({ length: 24 }, (_, i) =>
      JSON.stringify(chatLine(`q-${i}`, `q ${i}`)),
    );
    const input = await server.client.files.create({
      file: await toFile(Buffer.from(lines.join('\n') + '\n'), 'in.jsonl'),
      purpose: 'batch',
    });
    const created = await server.client.batches.create({
      input_file_id: input.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    // Killed once lines run: their chunk was read from S3 already.
    for (let i = 0; i < 300; i++) {
      const b = await server.client.batches.retrieve(created.id);
      if ((b.request_counts?.completed ?? 0) > 0) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    await s3.kill();
    try {
      const download = await server.client.files.content(input.id).catch((e: unknown) => e);
      expect(download).toMatchObject({ status: 503, type: 'server_error' });
      // Every line runs (their chunk was read before), but the files cannot be written yet.
      await waitForBatch(server.client, created.id, 30_000, (s) => s === 'finalizing');
      await new Promise((r) => setTimeout(r, 1_000));
      expect((await server.client.batches.retrieve(created.id)).status).toBe('finalizing');
    } finally {
      await s3.restart();
    }
    const batch = await waitForBatch(server.client, created.id);
    expect(batch.status).toBe('completed');
    expect(batch.request_counts).toMatchObject({ total: 24, completed: 24, failed: 0 });
    expect(await readLines(server.client, batch.output_file_id)).toHaveLength(24);
  });
});

describe('memory', () => {
  /** Resident and peak resident memory of a process (Linux), in MiB. */
  function memoryOf(pid: number): { rss: number; peak: number } {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1]);
    return { rss: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 };
  }

  /** Streams `mib` MiB of JSONL as a multipart upload (one 1 MiB buffer, sent again and again). */
  async function upload(baseURL: string, mib: number): Promise<Response> {
    const boundary = 'openbatchmemory';
    const chunk = jsonlOf(MiB);
    async function* body() {
      yield Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n` +
          `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.jsonl"\r\n` +
          `Content-Type: application/octet-stream\r\n\r\n`,
      );
      for (let i = 0; i < mib; i++) yield chunk;
      yield Buffer.from(`\r\n--${boundary}--\r\n`);
    }
    return fetch(`${baseURL}/files`, {
      method: 'POST',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      body: ReadableStream.from(body()),
      duplex: 'half',
    });
  }

  it('memory of `openbatch serve` does not grow with the size of an upload to S3', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'openbatch-s3-memory-'));
    const server = await spawnServer(dataDir, {
      ...s3.env('memory/'),
      OPENBATCH_S3_PART_BYTES: String(5 * MiB),
      OPENBATCH_UPSTREAM_URL: 'http://127.0.0.1:9/v1',
    });
    try {
      const pid = server.child.pid!;
      const before = memoryOf(pid);
      const small = await upload(server.baseURL, 80);
      expect(small.status).toBe(200);
      const afterSmall = memoryOf(pid);
      const started = Date.now();
      const large = await upload(server.baseURL, 160);
      expect(large.status).toBe(200);
      expect(((await large.json()) as { bytes: number }).bytes).toBeGreaterThan(160 * MiB);
      const afterLarge = memoryOf(pid);
      console.log(
        `S3 uploads through openbatch serve: RSS ${before.rss.toFixed(0)} MiB before; ` +
          `peak ${afterSmall.peak.toFixed(0)} MiB after 80 MiB, ${afterLarge.peak.toFixed(0)} MiB ` +
          `after 160 MiB (${((Date.now() - started) / 1000).toFixed(1)} s)`,
      );
      // Twice the data, (nearly) no more memory: parts in flight bound it, not the file.
      expect(afterLarge.peak - afterSmall.peak).toBeLessThan(50); // the 80 MiB more data
      expect(afterLarge.peak - before.rss).toBeLessThan(150);
    } finally {
      server.child.kill('SIGKILL');
      await server.exited;
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
