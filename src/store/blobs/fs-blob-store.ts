import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';
import type { BlobStore, BlobWriter } from './blob-store.ts';
import { createFsSpools } from './fs-spools.ts';
import { readRange } from './read-range.ts';

const SAFE_KEY = /^[A-Za-z0-9_-]+$/;

/**
 * Blobs as files under `root/blobs`, written to `root/tmp` first, then fsync → rename → fsync of
 * the directory, so a crash leaves a blob absent or complete, never half written.
 */
export async function createFsBlobStore(
  root: string,
  opts: { shared?: boolean } = {},
): Promise<BlobStore> {
  const blobDir = join(root, 'blobs');
  const spoolDir = join(root, 'spool');
  // File contents are every project's data: folders 0700, files 0600 (owner only).
  await mkdir(blobDir, { recursive: true, mode: 0o700 });
  await mkdir(spoolDir, { recursive: true, mode: 0o700 });
  const tmpDir = await freshTmpDir(join(root, 'tmp'), opts.shared === true);
  const pathOf = (key: string): string => {
    // Keys are our own ids; refusing anything else keeps a path from ever leaving the folder.
    if (!SAFE_KEY.test(key)) throw new Error(`invalid blob key: ${key}`);
    return join(blobDir, key);
  };
  return {
    createWriter: async (key) =>
      createWriter(pathOf(key), join(tmpDir, `${key}.${randomBytes(6).toString('hex')}`), blobDir),
    openRead: (key) => createReadStream(pathOf(key)),
    readRange: async (key, start, end) => readRange(pathOf(key), start, end),
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
    listBlobs: async () => (await readdir(blobDir)).filter((name) => SAFE_KEY.test(name)),
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
      // A write still in flight fails once the stream is destroyed: nobody awaits it any more,
      // and an 'error' without a listener would be an uncaught exception.
      stream.on('error', () => undefined);
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

/** A process-private folder's partial writes of a dead process are removed after this long. */
const STALE_TMP_MS = 24 * 3600_000;

/**
 * Where blobs are written before they are renamed into place. One process owns a private
 * directory: leftovers of interrupted writes are removed at start. A directory shared by the
 * processes of a cluster gets a subfolder per process, and only ones idle a day are removed.
 */
async function freshTmpDir(tmpRoot: string, shared: boolean): Promise<string> {
  if (!shared) {
    await rm(tmpRoot, { recursive: true, force: true });
    await mkdir(tmpRoot, { recursive: true, mode: 0o700 });
    return tmpRoot;
  }
  await mkdir(tmpRoot, { recursive: true, mode: 0o700 });
  for (const entry of await readdir(tmpRoot)) {
    const info = await stat(join(tmpRoot, entry)).catch(() => null);
    if (info && Date.now() - info.mtimeMs > STALE_TMP_MS)
      await rm(join(tmpRoot, entry), { recursive: true, force: true });
  }
  const own = join(tmpRoot, `${process.pid}-${randomBytes(6).toString('hex')}`);
  await mkdir(own, { recursive: true, mode: 0o700 });
  return own;
}
