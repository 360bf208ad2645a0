import { describe, expect, it } from 'vitest';
import { runFinalizeKills, runUploadKills } from './harness/kill-files.ts';

describe('kill -9 during upload and during finalizing (full)', () => {
  it('never shows a partial upload across 20 kills of a 100 MB upload', async () => {
    const r = await runUploadKills({
      name: 'kill-upload-full',
      kills: 20,
      fileBytes: 100 * 1024 * 1024,
    });
    expect(r.partialVisible, r.why).toEqual([]);
  }, 1_200_000);

  it('never ends a batch without whole files while its finalizing is killed and resumed', async () => {
    const r = await runFinalizeKills({ name: 'kill-finalize-full', lines: 30_000, kills: 20 });
    expect(r.endedWithoutFiles, r.why).toEqual([]);
    expect(r.status, r.why).toBe('cancelled');
    expect(r.report.ok, r.why).toBe(true);
    expect(r.orphanBlobs, r.why).toBe(0);
    expect(r.killsWhileFinalizing, r.why).toBeGreaterThanOrEqual(5);
  }, 1_800_000);
});
