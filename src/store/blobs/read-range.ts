import { open } from 'node:fs/promises';

/** Bytes [start, end) of the file at `path`; rejects if it ends before `end`. */
export async function readRange(path: string, start: number, end: number): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(end - start);
    let got = 0;
    while (got < buf.length) {
      const { bytesRead } = await handle.read(buf, got, buf.length - got, start + got);
      if (bytesRead === 0) throw new Error(`${path} ends before byte ${end}`);
      got += bytesRead;
    }
    return buf;
  } finally {
    await handle.close();
  }
}
