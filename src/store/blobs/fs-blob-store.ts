import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';
import type { BlobStore, BlobWriter } from './blob-store.ts';
import { createFsSpools } from './fs-spools.ts';

const SAFE_KEY = /^[A-Za-z0-9_-]+$/;

/**
 * Blobs as files under `root/blobs`, written to `root/tmp` first, then fsync → rename → fsync of
 * the directory, so a crash leaves a blob absent or complete, never half written.
 */
export async function createFsBlobStore(root: string): Promise<BlobStore> {
  const blobDir = join(root, 'blobs');
  const tmpDir = join(root, 'tmp');
  const spoolDir = join(root, 'spool');
  // File contents are every project's data: folders 0700, files 0600 (owner only).
  await mkdir(blobDir, { recursive: true, mode: 0o700 });
  await mkdir(spoolDir, { recursive: true, mode: 0o700 });
  await rm(tmpDir, { recursive: true, force: true }); // leftovers of interrupted writes
  await mkdir(tmpDir, { recursive: true, mode: 0o700 });
  const pathOf = (key: string): string => {
    // Keys are our own ids; refusing anything else keeps a path from ever leaving the folder.
    if (!SAFE_KEY.test(key)) throw new Error(`invalid blob key: ${key}`);
    return join(blobDir, key);
  };
  return {
    createWriter: async (key) =>
      createWriter(pathOf(key), join(tmpDir, `${key}.${randomBytes(6).toString('hex')}`), blobDir),
    openRead: (key) => createReadStream(pathOf(key)),
    readRange: async (key, start, end) => {
      const handle = await open(pathOf(key), 'r');
      try {
        const buf = Buffer.allocUnsafe(end - start);
        let got = 0;
        while (got < buf.length) {
          const { bytesRead } = await handle.read(buf, got, buf.length - got, start + got);
          if (bytesRead === 0) throw new Error(`blob ${key} ends before byte ${end}`);
          got += bytesRead;
        }
        return buf;
      } finally {
        await handle.close();
      }
    },
    size: async (key) => {
      try {
        return (await stat(pathOf(key))).size;
      } catch {
        return null;
      }
    },
    remove: async (key) => {
      await rm(pathOf(key), { force: true });
    },
    ...createFsSpools(spoolDir, pathOf, fsyncDir),
  };
}

async function createWriter(finalPath: string, tmpPath: string, dir: string): Promise<BlobWriter> {
  const stream = createWriteStream(tmpPath, { flags: 'wx', mode: 0o600 });
  await once(stream, 'open');
  return {
    stream,
    commit: async () => {
      if (!stream.writableEnded) stream.end();
      if (!stream.closed) await once(stream, 'close');
      // Reopen to fsync: data must be on disk before the rename makes the blob visible.
      const handle = await open(tmpPath, 'r+');
      let size: number;
      try {
        await handle.sync();
        size = (await handle.stat()).size;
      } finally {
        await handle.close();
      }
      await rename(tmpPath, finalPath);
      await fsyncDir(dir);
      return size;
    },
    abort: async () => {
      stream.destroy();
      await rm(tmpPath, { force: true });
    },
  };
}

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
