import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');

describe('package-lock.json', () => {
  it('is what npm resolves from package.json, so `npm install` leaves it as is and `npm ci` takes it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'openbatch-lock-'));
    try {
      for (const f of ['package.json', 'package-lock.json'])
        copyFileSync(join(ROOT, f), join(dir, f));
      // From the npm cache only (filled by the install that preceded the tests): no network.
      execFileSync(
        'npm',
        [
          'install',
          '--package-lock-only',
          '--ignore-scripts',
          '--offline',
          '--no-audit',
          '--no-fund',
        ],
        { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] },
      );
      expect(readFileSync(join(dir, 'package-lock.json'), 'utf8')).toBe(
        readFileSync(join(ROOT, 'package-lock.json'), 'utf8'),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
