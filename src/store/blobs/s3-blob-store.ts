import { createReadStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  paginateListObjectsV2,
  S3Client,
} from '@aws-sdk/client-s3';
import type { Logger } from '../../lib/logger.ts';
import type { BlobStore } from './blob-store.ts';
import { createFsSpools } from './fs-spools.ts';
import { describeS3Error, isNotFound, s3Failure } from './s3-failure.ts';
import { createS3Writer } from './s3-blob-writer.ts';

const SAFE_KEY = /^[A-Za-z0-9_-]+$/;

export interface S3BlobStoreOptions {
  bucket: string;
  /** Key prefix, empty or ending in `/`. */
  prefix: string;
  forcePathStyle: boolean;
  region: string | null;
  /** @default the SDK's environment (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL) or AWS itself */
  endpoint?: string;
  /** This process's own folder for spools (S3 objects cannot be appended to). */
  spoolDir: string;
  /** Part size of multipart uploads (at least 5 MiB). */
  partBytes: number;
  /** @default 2 */
  queueSize?: number;
}

/**
 * Blobs as objects under `s3://bucket/prefix` (any S3-compatible server). Endpoint and
 * credentials come from the SDK's standard environment. Spools stay files on this process's disk:
 * S3 cannot append, and only a process on SQLite (the one owner of its batches) uses spools; a
 * shared store keeps answers in the database. Publishing a spool uploads its committed bytes.
 */
export async function createS3BlobStore(
  opts: S3BlobStoreOptions,
  logger: Logger,
): Promise<BlobStore> {
  await mkdir(opts.spoolDir, { recursive: true, mode: 0o700 });
  const client = new S3Client({
    region: opts.region ?? 'us-east-1',
    forcePathStyle: opts.forcePathStyle,
    ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
    // The 2025 default checksums (aws-chunked bodies) are refused by many S3-compatible servers.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // A dead server fails a call in seconds instead of hanging it (then 503, and retries).
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 60_000 },
    maxAttempts: 3,
  });
  const objectKey = (key: string): string => {
    // Keys are our own ids; refusing anything else keeps a key inside the prefix.
    if (!SAFE_KEY.test(key)) throw new Error(`invalid blob key: ${key}`);
    return opts.prefix + key;
  };
  const report = (op: string, key: string, err: unknown): void => {
    if (!isNotFound(err)) logger.warn({ op, key, err: describeS3Error(err) }, 'S3 call failed');
  };
  const call = async <T>(op: string, key: string, run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (err) {
      report(op, key, err);
      throw s3Failure(err, key);
    }
  };
  const bucket = opts.bucket;
  const writerOf = (key: string) =>
    createS3Writer({
      client,
      bucket,
      objectKey: objectKey(key),
      partBytes: opts.partBytes,
      queueSize: opts.queueSize ?? 2,
      onFailure: (err) => report('upload', key, err),
    });
  const removeObject = async (key: string): Promise<void> => {
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: objectKey(key) }));
  };
  const spools = createFsSpools(
    opts.spoolDir,
    (key) => objectKey(key), // key rules only: publishSpool is replaced below
    async () => undefined,
  );
  const spoolPath = (key: string): string => {
    objectKey(key); // the same key rules as blobs
    return join(opts.spoolDir, key);
  };
  return {
    createWriter: async (key) => writerOf(key),
    openRead: (key) =>
      Readable.from(readObject(client, bucket, objectKey(key), call), { objectMode: false }),
    readRange: async (key, start, end) => {
      if (end <= start) return Buffer.alloc(0);
      const bytes = await call('readRange', key, () =>
        readObjectRange(client, bucket, objectKey(key), start, end),
      );
      // S3 answers a range past the end with the bytes there are, as a short read of a file.
      if (bytes.length !== end - start) throw new Error(`${key} ends before byte ${end}`);
      return bytes;
    },
    size: async (key) => {
      try {
        const head = await call('size', key, () =>
          client.send(new HeadObjectCommand({ Bucket: bucket, Key: objectKey(key) })),
        );
        return head.ContentLength ?? 0;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw err;
      }
    },
    remove: async (key) => {
      await call('remove', key, () => removeObject(key));
    },
    listBlobs: async () =>
      call('listBlobs', opts.prefix, () => listKeys(client, bucket, opts.prefix)),
    ...spools,
    publishSpool: async (key, bytes, fileKey, extra) => {
      const writer = writerOf(fileKey);
      try {
        await pipeline(
          Readable.from(spoolContent(spoolPath(key), bytes, extra), { objectMode: false }),
          writer.stream,
        );
        const size = await writer.commit();
        if (size === 0) await call('remove', fileKey, () => removeObject(fileKey)); // no empty files
        return size;
      } catch (err) {
        await writer.abort();
        throw err;
      }
    },
    close: async () => {
      await spools.close();
      client.destroy();
    },
  };
}

type Call = <T>(op: string, key: string, run: () => Promise<T>) => Promise<T>;

async function* readObject(
  client: S3Client,
  bucket: string,
  key: string,
  call: Call,
): AsyncGenerator<Buffer> {
  const res = await call('openRead', key, () =>
    client.send(new GetObjectCommand({ Bucket: bucket, Key: key })),
  );
  const body = res.Body as AsyncIterable<Buffer> | undefined;
  if (!body) return;
  try {
    for await (const chunk of body) yield chunk;
  } catch (err) {
    throw s3Failure(err, key);
  }
}

async function readObjectRange(
  client: S3Client,
  bucket: string,
  key: string,
  start: number,
  end: number,
): Promise<Buffer> {
  const res = await client.send(
    new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${start}-${end - 1}` }),
  );
  return Buffer.from((await res.Body?.transformToByteArray()) ?? []);
}

async function listKeys(client: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const page of paginateListObjectsV2({ client }, { Bucket: bucket, Prefix: prefix })) {
    for (const object of page.Contents ?? []) {
      const name = object.Key?.slice(prefix.length) ?? '';
      if (SAFE_KEY.test(name)) keys.push(name);
    }
  }
  return keys;
}

/** A spool's committed bytes (never the remains past them), then `extra` lines. */
async function* spoolContent(
  path: string,
  bytes: number,
  extra: AsyncIterable<string> | null,
): AsyncGenerator<Buffer> {
  if (bytes > 0)
    yield* createReadStream(path, { start: 0, end: bytes - 1 }) as AsyncIterable<Buffer>;
  if (extra) for await (const line of extra) yield Buffer.from(line);
}
