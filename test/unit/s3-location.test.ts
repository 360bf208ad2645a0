import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.ts';
import { parseS3Location } from '../../src/config/s3-location.ts';

const dir = mkdtempSync(join(tmpdir(), 'openbatch-s3-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('OPENBATCH_BLOB_STORE=s3://…', () => {
  it('parses bucket, prefix, path style, region and part size', () => {
    expect(parseS3Location('s3://my-bucket/a/b/', {})).toEqual({
      bucket: 'my-bucket',
      prefix: 'a/b/',
      forcePathStyle: false,
      region: null,
      partBytes: 8 * 1024 * 1024,
    });
    expect(
      parseS3Location('s3://my-bucket', {
        OPENBATCH_S3_FORCE_PATH_STYLE: '1',
        AWS_REGION: 'eu-west-3',
        OPENBATCH_S3_PART_BYTES: String(6 * 1024 * 1024),
      }),
    ).toMatchObject({ prefix: '', forcePathStyle: true, region: 'eu-west-3', partBytes: 6291456 });
    expect(parseS3Location('/srv/files', {})).toBeNull();
  });

  it('refuses bad buckets and parts below S3 minimum', () => {
    expect(() => parseS3Location('s3://', {})).toThrow(/bucket/);
    expect(() => parseS3Location('s3://Bad_Bucket/x', {})).toThrow(/bucket/);
    expect(() => parseS3Location('s3://ok-bucket', { OPENBATCH_S3_PART_BYTES: '1048576' })).toThrow(
      /OPENBATCH_S3_PART_BYTES/,
    );
  });

  it('selects S3 from the environment or the config file; spools stay in the data dir', () => {
    const fromEnv = loadConfig({ dataDir: dir }, { OPENBATCH_BLOB_STORE: 's3://files/openbatch' });
    expect(fromEnv.blobS3).toMatchObject({ bucket: 'files', prefix: 'openbatch/' });
    expect(fromEnv.blobDir).toBe(resolve(dir));
    const path = join(dir, 'config.json');
    writeFileSync(path, JSON.stringify({ blobStore: 's3://other-bucket' }));
    expect(loadConfig({ dataDir: dir, config: path }, {}).blobS3).toMatchObject({
      bucket: 'other-bucket',
      prefix: '',
    });
    const plain = loadConfig({ dataDir: dir }, { OPENBATCH_BLOB_STORE: join(dir, 'files') });
    expect(plain.blobS3).toBeNull();
    expect(plain.blobDir).toBe(join(dir, 'files'));
    expect(() => loadConfig({ dataDir: dir }, { OPENBATCH_BLOB_STORE: 'gs://x/y' })).toThrow(
      /directory path or s3:\/\//,
    );
  });
});
