import { Transform } from 'node:stream';
import { DeleteObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { BlobWriter } from './blob-store.ts';
import { s3Failure } from './s3-failure.ts';

export interface S3WriterTarget {
  client: S3Client;
  bucket: string;
  /** The object key (prefix included). */
  objectKey: string;
  /** Bytes per part of a multipart upload (S3's minimum is 5 MiB). */
  partBytes: number;
  /** Parts uploaded at once: memory per writer is about (this + 1) × partBytes. */
  queueSize: number;
}

/**
 * A blob streamed to S3: one PUT when it fits in a part, else a multipart upload, so memory
 * stays bounded by the parts in flight whatever the size. Nothing is visible until the upload
 * completes (S3 makes an object appear whole on PUT or CompleteMultipartUpload). A failed or
 * aborted upload sends AbortMultipartUpload (lib-storage does, with `leavePartsOnError` off), and
 * a failure destroys the stream with the error so a writer blocked on backpressure is released.
 */
export function createS3Writer(target: S3WriterTarget): BlobWriter {
  let bytes = 0;
  let committed = false;
  const stream = new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  const upload = new Upload({
    client: target.client,
    params: { Bucket: target.bucket, Key: target.objectKey, Body: stream },
    partSize: target.partBytes,
    queueSize: target.queueSize,
    leavePartsOnError: false,
  });
  const done = upload.done().then(
    () => undefined,
    (err: unknown) => {
      const failure = s3Failure(err, target.objectKey);
      stream.destroy(failure);
      throw failure;
    },
  );
  done.catch(() => undefined); // observed by commit or abort; never an unhandled rejection
  return {
    stream,
    commit: async () => {
      if (!stream.writableEnded) stream.end();
      await done;
      committed = true;
      return bytes;
    },
    abort: async () => {
      if (committed) return; // as on disk: aborting after a commit leaves the blob
      // Ending the body with an error makes the upload fail, and lib-storage then aborts the
      // multipart upload before `done` settles: once this returns, no part lingers.
      if (!stream.destroyed) stream.destroy(new Error('blob write aborted'));
      const completed = await done.then(
        () => true,
        () => false,
      );
      // The body had already ended and its last PUT went through: remove what was published.
      if (completed)
        await target.client
          .send(new DeleteObjectCommand({ Bucket: target.bucket, Key: target.objectKey }))
          .catch(() => undefined);
    },
  };
}
