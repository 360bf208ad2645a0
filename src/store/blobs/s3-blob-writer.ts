import { PassThrough, Writable } from 'node:stream';
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
  /** Told of an upload that failed on its own (not one its writer aborted). */
  onFailure(err: unknown): void;
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
  let aborting = false;
  // What lib-storage reads. It destroys this when it gives up (with an AbortError of its own):
  // the writer's stream below fails only with the upload's real outcome, once it is known.
  const body = new PassThrough();
  body.on('error', () => undefined); // reported through `done`
  const stream = new Writable({
    write(chunk: Buffer, _enc, callback) {
      bytes += chunk.length;
      // A body that was given up never drains: the write waits until `done` fails the stream.
      if (body.write(chunk)) callback();
      else body.once('drain', () => callback());
    },
    final(callback) {
      body.end();
      callback();
    },
    destroy(err, callback) {
      // Destroyed before its end (abort, a failed pipeline): the upload fails and is aborted.
      // (A stream that finished is destroyed too, by autoDestroy: its body must stay whole.)
      if (!body.destroyed && (err !== null || !this.writableFinished))
        body.destroy(err ?? new Error('blob write aborted'));
      callback(err);
    },
  });
  // A failure is also reported by commit and abort: an 'error' nobody listens for at that moment
  // (the writer busy elsewhere, or already waiting in commit) must not become an uncaught exception.
  stream.on('error', () => undefined);
  const upload = new Upload({
    client: target.client,
    params: { Bucket: target.bucket, Key: target.objectKey, Body: body },
    partSize: target.partBytes,
    queueSize: target.queueSize,
    leavePartsOnError: false,
  });
  const done = upload.done().then(
    () => undefined,
    (err: unknown) => {
      if (!aborting) target.onFailure(err);
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
      aborting = true;
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
