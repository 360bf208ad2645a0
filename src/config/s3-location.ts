/**
 * Where file contents live when OPENBATCH_BLOB_STORE (or `blobStore`) is `s3://bucket/prefix`.
 * Endpoint and credentials are not here: the AWS SDK reads its standard environment itself
 * (AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, profiles…),
 * so no secret passes through our configuration.
 */
export interface S3Location {
  bucket: string;
  /** Key prefix, empty or ending in `/`. */
  prefix: string;
  /** Path-style URLs (`endpoint/bucket/key`), as MinIO and most self-hosted servers need. */
  forcePathStyle: boolean;
  /** AWS_REGION; null: us-east-1 (what S3-compatible servers accept). */
  region: string | null;
  /**
   * Part size of multipart uploads (OPENBATCH_S3_PART_BYTES, at least S3's 5 MiB; default
   * 8 MiB). Memory per upload in progress is about three parts.
   */
  partBytes: number;
}

const MIN_PART_BYTES = 5 * 1024 * 1024;
const DEFAULT_PART_BYTES = 8 * 1024 * 1024;

const S3_URL = /^s3:\/\/([^/]+)(?:\/(.*))?$/;

/** The S3 location of an `s3://` store setting, null for a directory path. */
export function parseS3Location(
  raw: string | undefined,
  env: Record<string, string | undefined>,
): S3Location | null {
  if (raw === undefined || !raw.startsWith('s3://')) return null;
  const m = S3_URL.exec(raw);
  const bucket = m?.[1];
  if (!bucket || !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket))
    throw new Error(`OPENBATCH_BLOB_STORE: expected s3://bucket/prefix with a valid bucket name`);
  const path = (m?.[2] ?? '').replace(/^\/+|\/+$/g, '');
  return {
    bucket,
    prefix: path === '' ? '' : `${path}/`,
    forcePathStyle: env.OPENBATCH_S3_FORCE_PATH_STYLE === '1',
    region: env.AWS_REGION || null,
    partBytes: partBytes(env.OPENBATCH_S3_PART_BYTES),
  };
}

function partBytes(raw: string | undefined): number {
  if (raw === undefined || raw === '') return DEFAULT_PART_BYTES;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < MIN_PART_BYTES)
    throw new Error(`OPENBATCH_S3_PART_BYTES: expected an integer of at least ${MIN_PART_BYTES}`);
  return n;
}
