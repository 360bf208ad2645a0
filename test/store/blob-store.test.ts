/**
 * The BlobStore contract, run against both implementations: files on disk (the default) and S3
 * (a real S3-compatible server, s3rver, in a child process). Then what only S3 has: multipart
 * uploads larger than a part, no lingering parts after an abort, and a server that goes away.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buffer, text } from 'node:stream/consumers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../src/domain/app-error.ts';
import { silentLogger } from '../../src/lib/logger.ts';
import type { BlobStore, BlobWriter } from '../../src/store/blobs/blob-store.ts';
import { createFsBlobStore } from '../../src/store/blobs/fs-blob-store.ts';
import { createS3BlobStore } from '../../src/store/blobs/s3-blob-store.ts';
import { captureLogger } from '../helpers/capture-logger.ts';
import {
  S3_TEST_CREDENTIALS,
  startRecordingProxy,
  startS3Server,
  type S3Server,
} from '../helpers/s3-server.ts';

const MiB = 1024 * 1024;
const PART_BYTES = 5 * MiB;

let s3: S3Server;
const dirs: string[] = [];
beforeAll(async () => {
  s3 = await startS3Server();
  Object.assign(process.env, s3.env('unused/'));
});
afterAll(async () => {
  await s3.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'openbatch-blobs-'));
  dirs.push(dir);
  return dir;
}

async function s3Store(logger = silentLogger): Promise<BlobStore & { prefix: string }> {
  const prefix = `t${randomBytes(4).toString('hex')}/`;
  const store = await createS3BlobStore(
    {
      bucket: s3.bucket,
      prefix,
      forcePathStyle: true,
      region: 'us-east-1',
      spoolDir: join(tempDir(), 'spool'),
      partBytes: PART_BYTES,
    },
    logger,
  );
  return Object.assign(store, { prefix });
}

async function write(writer: BlobWriter, ...parts: (Buffer | string)[]): Promise<void> {
  for (const part of parts) if (!writer.stream.write(part)) await once(writer.stream, 'drain');
}

async function put(store: BlobStore, key: string, data: Buffer | string): Promise<number> {
  const writer = await store.createWriter(key);
  await write(writer, data);
  return writer.commit();
}

const IMPLEMENTATIONS: [string, () => Promise<BlobStore>][] = [
  ['files on disk', () => createFsBlobStore(tempDir())],
  ['S3', () => s3Store()],
];

describe.each(IMPLEMENTATIONS)('BlobStore contract: %s', (_name, open) => {
  it('a blob is invisible until commit, then whole: size, list, read, ranges', async () => {
    const store = await open();
    const writer = await store.createWriter('file-a');
    await write(writer, 'hello ', Buffer.from('world\n'));
    expect(await store.size('file-a')).toBeNull();
    expect(await store.listBlobs()).not.toContain('file-a');
    expect(await writer.commit()).toBe(12);
    expect(await store.size('file-a')).toBe(12);
    expect(await store.listBlobs()).toEqual(['file-a']);
    expect(await text(store.openRead('file-a'))).toBe('hello world\n');
    expect((await store.readRange('file-a', 6, 11)).toString()).toBe('world');
    expect((await store.readRange('file-a', 3, 3)).length).toBe(0);
    await expect(store.readRange('file-a', 6, 40)).rejects.toThrow(/ends before/);
    await store.close();
  });

  it('an aborted writer leaves nothing, before or after its body ended', async () => {
    const store = await open();
    const early = await store.createWriter('file-early');
    await write(early, 'partial');
    await early.abort();
    const late = await store.createWriter('file-late');
    await write(late, 'whole body');
    late.stream.end();
    await once(late.stream, 'finish'); // as after an upload's body was read whole
    await late.abort();
    // Let a PUT that was already under way settle, then look.
    await new Promise((r) => setTimeout(r, 200));
    expect(await store.size('file-early')).toBeNull();
    expect(await store.size('file-late')).toBeNull();
    expect(await store.listBlobs()).toEqual([]);
    await store.close();
  });

  it('missing blobs: size null, reads reject with ENOENT, remove is idempotent', async () => {
    const store = await open();
    expect(await store.size('nope')).toBeNull();
    await expect(text(store.openRead('nope'))).rejects.toMatchObject({ code: 'ENOENT' });
    await put(store, 'gone', 'x');
    await store.remove('gone');
    await store.remove('gone');
    expect(await store.size('gone')).toBeNull();
    expect(() => store.openRead('../escape')).toThrow(/invalid blob key/);
    await store.close();
  });

  it('a commit replaces an earlier blob of the same key', async () => {
    const store = await open();
    await put(store, 'same', 'first version');
    await put(store, 'same', 'second');
    expect(await text(store.openRead('same'))).toBe('second');
    await store.close();
  });

  it('spools: positioned writes, committed reads, publish with extra lines, removal', async () => {
    const store = await open();
    await store.writeSpool('b1_output', 0, Buffer.from('line1\n'));
    await store.writeSpool('b1_output', 6, Buffer.from('line2\nREMAINS-OF-A-LOST-WRITE'));
    await store.syncSpool('b1_output');
    await store.writeSpool('b1_output', 12, Buffer.from('line3\n')); // over the remains
    expect((await store.readSpoolRange('b1_output', 6, 18)).toString()).toBe('line2\nline3\n');
    expect(await store.listSpools()).toContain('b1_output');
    async function* extra() {
      yield 'unrun1\n';
      yield 'unrun2\n';
    }
    // Committed: 12 bytes (line3 never committed), then the extra lines.
    expect(await store.publishSpool('b1_output', 12, 'file-out', extra())).toBe(26);
    expect(await text(store.openRead('file-out'))).toBe('line1\nline2\nunrun1\nunrun2\n');
    // Published again after a crash cut the first publish short: the same content.
    expect(await store.publishSpool('b1_output', 12, 'file-out', null)).toBe(12);
    expect(await text(store.openRead('file-out'))).toBe('line1\nline2\n');
    // Nothing committed and nothing extra: no file.
    expect(await store.publishSpool('b1_error', 0, 'file-err', null)).toBe(0);
    expect(await store.size('file-err')).toBeNull();
    await store.removeSpool('b1_output');
    await store.removeSpool('b1_error');
    await expect(store.readSpoolRange('b1_output', 0, 6)).rejects.toMatchObject({
      code: 'ENOENT',
    });
    expect(await store.listSpools()).toEqual([]);
    await store.close();
  });
});

describe('S3 blob store', () => {
  /** A store whose requests pass through a recording proxy (s3rver lists no multipart uploads). */
  async function recordedStore() {
    const proxy = await startRecordingProxy(s3.endpoint);
    const store = await createS3BlobStore(
      {
        bucket: s3.bucket,
        prefix: `r${randomBytes(4).toString('hex')}/`,
        forcePathStyle: true,
        region: 'us-east-1',
        endpoint: proxy.endpoint,
        spoolDir: join(tempDir(), 'spool'),
        partBytes: PART_BYTES,
      },
      silentLogger,
    );
    return { store, proxy };
  }
  const count = (requests: string[], pattern: RegExp) =>
    requests.filter((r) => pattern.test(r)).length;

  it('streams a blob larger than a part as a multipart upload and reads it back whole', async () => {
    const { store, proxy } = await recordedStore();
    const data = randomBytes(12 * MiB + 123);
    const writer = await store.createWriter('big');
    for (let at = 0; at < data.length; at += 64 * 1024)
      await write(writer, data.subarray(at, at + 64 * 1024));
    expect(await store.size('big')).toBeNull();
    expect(await writer.commit()).toBe(data.length);
    // 5 + 5 + 2 MiB: three parts, then one CompleteMultipartUpload.
    expect(count(proxy.requests, /^POST \S*big\?uploads/)).toBe(1);
    expect(count(proxy.requests, /^PUT \S*big\?.*partNumber=/)).toBe(3);
    expect(count(proxy.requests, /^POST \S*big\?uploadId=/)).toBe(1);
    expect((await buffer(store.openRead('big'))).equals(data)).toBe(true);
    const at = 7 * MiB - 10;
    expect((await store.readRange('big', at, at + 100)).equals(data.subarray(at, at + 100))).toBe(
      true,
    );
    await store.close();
    await proxy.close();
  });

  it('an aborted multipart upload is aborted on the server and never becomes visible', async () => {
    const { store, proxy } = await recordedStore();
    const writer = await store.createWriter('half');
    await write(writer, randomBytes(11 * MiB)); // two parts sent or under way
    await writer.abort();
    expect(await store.size('half')).toBeNull();
    expect(count(proxy.requests, /^POST \S*half\?uploads/)).toBe(1);
    expect(count(proxy.requests, /^DELETE \S*half\?uploadId=/)).toBe(1); // AbortMultipartUpload
    expect(count(proxy.requests, /^POST \S*half\?uploadId=/)).toBe(0); // never completed
    await store.close();
    await proxy.close();
  });

  it('an unreachable server is a store_unavailable AppError (503) that names no secret', async () => {
    const logger = captureLogger();
    const store = await s3Store(logger);
    await put(store, 'kept', 'still here');
    await s3.kill();
    try {
      const failures = await Promise.all([
        store.size('kept').catch((e: unknown) => e),
        store.readRange('kept', 0, 4).catch((e: unknown) => e),
        text(store.openRead('kept')).catch((e: unknown) => e),
        put(store, 'new', 'x').catch((e: unknown) => e),
        store.listBlobs().catch((e: unknown) => e),
      ]);
      for (const failure of failures) {
        expect(failure).toBeInstanceOf(AppError);
        expect((failure as AppError).code).toBe('store_unavailable');
      }
      const logged = JSON.stringify(logger.entries);
      expect(logger.entries.length).toBeGreaterThan(0);
      expect(logged).not.toContain(S3_TEST_CREDENTIALS.AWS_SECRET_ACCESS_KEY);
    } finally {
      await s3.restart();
    }
    expect(await text(store.openRead('kept'))).toBe('still here');
    await store.close();
  });
});
