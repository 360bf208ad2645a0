import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WalSync } from '../../src/store/sqlite/wal-sync.ts';

describe('WalSync', () => {
  let dir = '';
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'openbatch-walsync-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('lets many callers share fsyncs, and every caller resolves', async () => {
    const path = join(dir, 'db-wal');
    writeFileSync(path, 'x');
    const sync = new WalSync(path);
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => sync.sync()));
    expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
    await sync.sync();
    await sync.close();
  });

  it('fails while the file cannot be opened, and recovers once it can', async () => {
    const path = join(dir, 'later-wal');
    const sync = new WalSync(path);
    await expect(sync.sync()).rejects.toThrow(/ENOENT/);
    writeFileSync(path, 'x');
    await expect(sync.sync()).resolves.toBeUndefined();
    await sync.close();
  });
});
