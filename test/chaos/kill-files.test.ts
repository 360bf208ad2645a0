import { describe, expect, it } from 'vitest';
import { runFinalizeKills, runUploadKills } from './harness/kill-files.ts';

describe('kill -9 during upload and during finalizing (fast)', () => {
  it('never shows a partial upload: each file is absent or complete', async () => {
    const r = await runUploadKills({
      name: 'kill-upload-fast',
      kills: 3,
      fileBytes: 4 * 1024 * 1024,
    });
    expect(r.partialVisible, r.why).toEqual([]);
  }, 180_000);

  it('never ends a batch without whole files while its finalizing is killed and resumed', async () => {
    const r = await runFinalizeKills({ name: 'kill-finalize-fast', lines: 20_000, kills: 3 });
    expect(r.endedWithoutFiles, r.why).toEqual([]);
    expect(r.status, r.why).toBe('cancelled');
    expect(r.report.ok, r.why).toBe(true);
    expect(r.orphanBlobs, r.why).toBe(0);
    expect(r.killsWhileFinalizing, r.why).toBeGreaterThanOrEqual(1);
  }, 240_000);
});
