import { AppError } from '../../domain/app-error.ts';

interface S3ErrorShape {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

/** A missing object: the same ENOENT a missing file gives, so callers treat both stores alike. */
export function isNotFound(err: unknown): boolean {
  const e = err as S3ErrorShape | null;
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404;
}

/**
 * What an S3 call's failure becomes: a missing object → an ENOENT error; anything else (server
 * unreachable, 5xx, timeouts, refused credentials) → AppError store_unavailable, which the API
 * answers with 503 in OpenAI's envelope and the engine's loops retry. The message names no
 * endpoint, bucket or credential; the SDK's own error stays only as the cause.
 */
export function s3Failure(err: unknown, key: string): Error {
  if (err instanceof AppError) return err;
  // A range that starts past the end: the object is shorter than asked (a short read on disk).
  if ((err as S3ErrorShape | null)?.$metadata?.httpStatusCode === 416)
    return new Error(`${key} ends before the range asked for`, { cause: err });
  if (isNotFound(err))
    return Object.assign(new Error(`no such blob: ${key}`), { code: 'ENOENT', cause: err });
  return new AppError(
    'store_unavailable',
    'The service is temporarily unavailable (its file storage cannot be reached). Please try again shortly.',
    { cause: err },
  );
}

/** A short, secret-free description of an S3 failure for the log (name and message only). */
export function describeS3Error(err: unknown): string {
  const cause = err instanceof AppError ? err.cause : err;
  const e = cause as S3ErrorShape | null;
  const status = e?.$metadata?.httpStatusCode;
  return `${e?.name ?? 'Error'}${status ? ` (HTTP ${status})` : ''}: ${e?.message ?? String(cause)}`;
}
