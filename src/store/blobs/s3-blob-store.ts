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
import type { BlobStore, BlobWriter } from './blob-store.ts';
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
  const objects = new S3Objects(opts, logger);
  const spools = createFsSpools(
    opts.spoolDir,
    (key) => objects.keyOf(key), // key rules only: publishSpool is replaced below
    async () => undefined,
  );
  return {
    createWriter: async (key) => objects.writer(key),
    openRead: (key) => {
      objects.keyOf(key); // a bad key throws here, as on disk, not at the first read
      return Readable.from(objects.read(key), { objectMode: false });
    },
    readRange: async (key, start, end) => objects.readRange(key, start, end),
    size: async (key) => objects.size(key),
    remove: async (key) => objects.remove(key),
    listBlobs: async () => objects.list(),
    ...spools,
    publishSpool: async (key, bytes, fileKey, extra) => {
      objects.keyOf(key); // the same key rules as blobs
      return objects.upload(fileKey, spoolContent(join(opts.spoolDir, key), bytes, extra));
    },
    close: async () => {
      await spools.close();
      objects.close();
    },
  };
}

/** The objects of one prefix: every S3 failure is logged (secret-free) and mapped once, here. */
class S3Objects {
  readonly #client: S3Client;
  readonly #opts: S3BlobStoreOptions;
  readonly #logger: Logger;

  constructor(opts: S3BlobStoreOptions, logger: Logger) {
    this.#opts = opts;
    this.#logger = logger;
    this.#client = new S3Client({
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
  }

  /** The object key of blob `key`. Keys are our own ids: anything else could leave the prefix. */
  keyOf(key: string): string {
    if (!SAFE_KEY.test(key)) throw new Error(`invalid blob key: ${key}`);
    return this.#opts.prefix + key;
  }

  writer(key: string): BlobWriter {
    return createS3Writer({
      client: this.#client,
      bucket: this.#opts.bucket,
      objectKey: this.keyOf(key),
      partBytes: this.#opts.partBytes,
      queueSize: this.#opts.queueSize ?? 2,
      onFailure: (err) => this.#report('upload', key, err),
    });
  }

  /** Streams `content` as blob `key`; returns its size. Nothing stays when it is empty. */
  async upload(key: string, content: AsyncIterable<Buffer>): Promise<number> {
    const writer = this.writer(key);
    try {
      await pipeline(Readable.from(content, { objectMode: false }), writer.stream);
      const size = await writer.commit();
      if (size === 0) await this.remove(key);
      return size;
    } catch (err) {
      await writer.abort();
      throw err;
    }
  }

  async *read(key: string): AsyncGenerator<Buffer> {
    const res = await this.#call('openRead', key, () =>
      this.#client.send(new GetObjectCommand({ Bucket: this.#opts.bucket, Key: this.keyOf(key) })),
    );
    try {
      for await (const chunk of (res.Body ?? []) as AsyncIterable<Buffer>) yield chunk;
    } catch (err) {
      this.#report('openRead', key, err);
      throw s3Failure(err, key);
    }
  }

  async readRange(key: string, start: number, end: number): Promise<Buffer> {
    if (end <= start) return Buffer.alloc(0);
    const bytes = await this.#call('readRange', key, async () => {
      const res = await this.#client.send(
        new GetObjectCommand({
          Bucket: this.#opts.bucket,
          Key: this.keyOf(key),
          Range: `bytes=${start}-${end - 1}`,
        }),
      );
      return Buffer.from((await res.Body?.transformToByteArray()) ?? []);
    });
    // S3 answers a range past the end with the bytes there are, as a short read of a file.
    if (bytes.length !== end - start) throw new Error(`${key} ends before byte ${end}`);
    return bytes;
  }

  async size(key: string): Promise<number | null> {
    try {
      const head = await this.#call('size', key, () =>
        this.#client.send(
          new HeadObjectCommand({ Bucket: this.#opts.bucket, Key: this.keyOf(key) }),
        ),
      );
      return head.ContentLength ?? 0;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  async remove(key: string): Promise<void> {
    await this.#call('remove', key, () =>
      this.#client.send(
        new DeleteObjectCommand({ Bucket: this.#opts.bucket, Key: this.keyOf(key) }),
      ),
    );
  }

  /** Every blob under the prefix (page by page: a prefix may hold millions). */
  async list(): Promise<string[]> {
    const { bucket: Bucket, prefix: Prefix } = this.#opts;
    return this.#call('listBlobs', Prefix, async () => {
      const keys: string[] = [];
      for await (const page of paginateListObjectsV2({ client: this.#client }, { Bucket, Prefix }))
        for (const object of page.Contents ?? []) {
          const name = object.Key?.slice(Prefix.length) ?? '';
          if (SAFE_KEY.test(name)) keys.push(name);
        }
      return keys;
    });
  }

  close(): void {
    this.#client.destroy();
  }

  async #call<T>(op: string, key: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      this.#report(op, key, err);
      throw s3Failure(err, key);
    }
  }

  #report(op: string, key: string, err: unknown): void {
    if (isNotFound(err)) return;
    this.#logger.warn({ op, key, err: describeS3Error(err) }, 'S3 call failed');
  }
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
