import { createHash, type Hash } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import busboy from 'busboy';
import { AppError, badRequest } from '../domain/app-error.ts';
import { MAX_NAME_CHARS, truncateEcho } from '../domain/echo-limits.ts';
import type { BlobStore, BlobWriter } from '../store/blobs/blob-store.ts';

const SNIFF_BYTES = 64 * 1024;

/** What a multipart upload produced: the file already streamed into an uncommitted blob. */
export interface ReceivedUpload {
  fields: Map<string, string>;
  file: {
    writer: BlobWriter;
    filename: string;
    bytes: number;
    truncated: boolean;
    head: string;
    /** SHA-256 of the content (hex) when asked for (an Idempotency-Key compares uploads by it). */
    sha256: string | null;
  } | null;
}

/**
 * Streams a multipart/form-data body straight into the blob store (memory does not grow with
 * the file), accepting parts in any order: the SDK sends `file` before `purpose`, so the caller
 * decides about the file only after every part was read.
 */
export async function receiveUpload(
  body: ReadableStream<Uint8Array> | null,
  contentType: string,
  blobs: BlobStore,
  blobKey: string,
  maxFileBytes: number,
  hashContent = false,
): Promise<ReceivedUpload> {
  if (!contentType.toLowerCase().startsWith('multipart/form-data') || body === null) {
    throw badRequest(
      `Invalid Content-Type header (${truncateEcho(contentType || 'none')}), expected multipart/form-data.`,
    );
  }
  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: { 'content-type': contentType },
      // The filename is metadata echoed as given; blobs are keyed by file id, never by name.
      preservePath: true,
      limits: { fileSize: maxFileBytes, files: 1, fields: 32, fieldSize: 64 * 1024 },
    });
  } catch (err) {
    throw badRequest(`Invalid multipart body: ${(err as Error).message}`);
  }
  const result: ReceivedUpload = { fields: new Map(), file: null };
  const fileDone: Promise<void>[] = [];
  parser.on('field', (name, value) => result.fields.set(name, value));
  parser.on('file', (name, stream, info) => {
    if (name !== 'file' || result.file) {
      stream.resume();
      return;
    }
    const written = writeFilePart(stream, info.filename, blobs, blobKey, result, hashContent);
    // Observed at once: a write failure (ENOSPC) before the body ends must not go unhandled,
    // and it ends the whole parse, so the request is answered rather than left waiting.
    written.catch((err: unknown) => parser.destroy(err as Error));
    fileDone.push(written);
  });
  try {
    await pipeline(Readable.fromWeb(body as WebReadableStream), parser);
    await Promise.all(fileDone);
  } catch (err) {
    // The file storage failed (S3 unreachable: 503), not the body: the writer's stream holds
    // its error, whatever error the parse ended with once the stream was destroyed.
    const storageFailure = result.file?.writer.stream.errored;
    await result.file?.writer.abort();
    if (err instanceof AppError) throw err;
    if (storageFailure instanceof AppError) throw storageFailure;
    if ((err as NodeJS.ErrnoException).code === 'ENOSPC') {
      throw new AppError(
        'internal',
        'The server could not store the file: no space left on its device.',
      );
    }
    throw badRequest(`Invalid multipart body: ${(err as Error).message}`);
  }
  return result;
}

async function writeFilePart(
  stream: Readable & { truncated?: boolean },
  filename: string | undefined,
  blobs: BlobStore,
  blobKey: string,
  result: ReceivedUpload,
  hashContent: boolean,
): Promise<void> {
  const writer = await blobs.createWriter(blobKey);
  const sniffer = new HeadSniffer(hashContent ? createHash('sha256') : null);
  result.file = {
    writer,
    // Stored and echoed in every listing: kept to a name's length.
    filename: (filename || 'unknown_file').slice(0, MAX_NAME_CHARS),
    bytes: 0,
    truncated: false,
    head: '',
    sha256: null,
  };
  await pipeline(stream, sniffer, writer.stream);
  result.file.bytes = sniffer.bytes;
  result.file.truncated = stream.truncated === true;
  result.file.head = sniffer.head();
  result.file.sha256 = sniffer.hash?.digest('hex') ?? null;
}

/** Passes bytes through, counting (and maybe hashing) them, keeping the first 64 KiB for format checks. */
class HeadSniffer extends Transform {
  bytes = 0;
  readonly hash: Hash | null;

  constructor(hash: Hash | null) {
    super();
    this.hash = hash;
  }

  readonly #head: Buffer[] = [];
  #headBytes = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    this.hash?.update(chunk);
    if (this.#headBytes < SNIFF_BYTES) {
      const part = chunk.subarray(0, SNIFF_BYTES - this.#headBytes);
      this.#head.push(part);
      this.#headBytes += part.length;
    }
    done(null, chunk);
  }

  head(): string {
    return Buffer.concat(this.#head).toString('utf8');
  }
}
