import { constants } from 'node:fs';
import { link, open, readdir, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { BlobStore } from './blob-store.ts';

type SpoolOps = Pick<
  BlobStore,
  'writeSpool' | 'syncSpool' | 'publishSpool' | 'removeSpool' | 'listSpools' | 'close'
>;

/** Text handed to a file is gathered into writes of about this size. */
const WRITE_BYTES = 256 * 1024;

/**
 * Spools as files under `root/spool`, written in place at the committed position (a crash can
 * leave bytes past it; the next write or the publish replaces them). Publishing hard-links the
 * spool into the blob folder, so a large output file is never copied.
 */
export function createFsSpools(
  spoolDir: string,
  blobPath: (key: string) => string,
  fsyncDir: (dir: string) => Promise<void>,
): SpoolOps {
  const handles = new Map<string, Promise<FileHandle>>();
  const pathOf = (key: string): string => {
    blobPath(key); // the same key rules as blobs
    return join(spoolDir, key);
  };
  const handle = (key: string): Promise<FileHandle> => {
    let h = handles.get(key);
    if (!h) {
      h = open(pathOf(key), constants.O_RDWR | constants.O_CREAT, 0o600);
      handles.set(key, h);
      h.catch(() => handles.delete(key));
    }
    return h;
  };
  const closeHandle = async (key: string): Promise<void> => {
    const h = handles.get(key);
    handles.delete(key);
    if (h) await (await h).close().catch(() => undefined);
  };
  return {
    writeSpool: async (key, position, data) => {
      const h = await handle(key);
      let written = 0;
      while (written < data.length) {
        const { bytesWritten } = await h.write(
          data,
          written,
          data.length - written,
          position + written,
        );
        written += bytesWritten;
      }
    },
    syncSpool: async (key) => {
      await (await handle(key)).sync();
    },
    publishSpool: async (key, bytes, fileKey, extra) => {
      const h = await handle(key);
      await h.truncate(bytes);
      let size = bytes;
      if (extra) size += await appendAll(h, bytes, extra);
      await h.sync();
      await closeHandle(key);
      if (size === 0) return 0;
      const target = blobPath(fileKey);
      await rm(target, { force: true }); // left by a publish that a crash cut short
      await link(pathOf(key), target);
      await fsyncDir(join(target, '..'));
      return size;
    },
    removeSpool: async (key) => {
      await closeHandle(key);
      await rm(pathOf(key), { force: true });
    },
    listSpools: async () => readdir(spoolDir),
    close: async () => {
      await Promise.all([...handles.keys()].map(closeHandle));
    },
  };
}

async function appendAll(
  h: FileHandle,
  position: number,
  lines: AsyncIterable<string>,
): Promise<number> {
  let pending: string[] = [];
  let pendingBytes = 0;
  let written = 0;
  const flush = async (): Promise<void> => {
    if (pending.length === 0) return;
    const data = Buffer.from(pending.join(''));
    pending = [];
    pendingBytes = 0;
    let done = 0;
    while (done < data.length) {
      const r = await h.write(data, done, data.length - done, position + written + done);
      done += r.bytesWritten;
    }
    written += data.length;
  };
  for await (const line of lines) {
    pending.push(line);
    pendingBytes += line.length;
    if (pendingBytes >= WRITE_BYTES) await flush();
  }
  await flush();
  return written;
}
