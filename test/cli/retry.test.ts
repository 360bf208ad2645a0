import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runResults } from '../../src/cli/commands/results.ts';
import { runRetry } from '../../src/cli/commands/retry.ts';
import { runStatus } from '../../src/cli/commands/status.ts';
import { runSubmit } from '../../src/cli/commands/submit.ts';
import { fsJobStore } from '../../src/sdk/job-store.ts';
import { chatLine, startTestServer, writeJsonl, type TestServer } from '../helpers/test-server.ts';
import { captureIo } from '../sdk/helpers/capture-io.ts';

const LINES = 300;
const failsOnce = (i: number): boolean => i % 7 === 3;

describe('retry', () => {
  let t: TestServer;
  const dir = mkdtempSync(join(tmpdir(), 'openbatch-retry-'));
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates follow-up batches for exactly the failed lines and merges their results in', async () => {
    const ids = Array.from({ length: LINES }, (_, i) => `r-${i}`);
    // status=400x1: the first call with this body answers 400 (final, not retried by the engine),
    // any later call succeeds — what a follow-up batch should fix.
    const input = writeJsonl(
      ids.map((id, i) =>
        chatLine(id, `[sim:id=${id}${failsOnce(i) ? ';status=400x1' : ''}] q ${i}`),
      ),
    );
    const failed = ids.filter((_, i) => failsOnce(i));
    const flags = {
      baseUrl: t.baseURL,
      apiKey: 'test-key',
      jobsDir: join(dir, 'jobs'),
      pollIntervalMs: 100,
    };

    const submit = captureIo();
    expect(await runSubmit({ ...flags, input, wait: true }, submit.io)).toBe(0);
    expect(submit.stdout()).toContain(`${failed.length} line(s) failed`);
    const callsBefore = t.sim.calls().length;

    const retry = captureIo();
    expect(await runRetry({ ...flags, job: 'last', wait: true }, retry.io), retry.stderr()).toBe(0);
    const idOf = (marker: string | null) => /id=([^;\]]+)/.exec(marker ?? '')?.[1] ?? '';
    const resent = t.sim
      .calls()
      .slice(callsBefore)
      .map((c) => idOf(c.marker));
    expect(resent.sort()).toEqual([...failed].sort());

    const [job] = await fsJobStore(flags.jobsDir).list();
    expect(job!.rounds.map((r) => r.round)).toEqual([0, 1]);
    expect(job!.batches.filter((b) => b.round === 1).reduce((n, b) => n + b.lines, 0)).toBe(
      failed.length,
    );
    // Against an openbatch server the follow-ups are made by the server (POST …/retry): no upload.
    const round0 = job!.batches.filter((b) => b.round === 0).map((b) => b.id);
    for (const b of job!.batches.filter((b) => b.round === 1)) {
      const batch = await t.client.batches.retrieve(b.id);
      expect(round0).toContain(batch.metadata?.retry_of);
      expect((await t.client.files.retrieve(batch.input_file_id)).filename).toMatch(
        /_retry\.jsonl$/,
      );
    }

    const status = captureIo();
    expect(await runStatus({ ...flags, job: 'last', json: true }, status.io)).toBe(0);
    expect(JSON.parse(status.stdout()).counts).toEqual({
      total: LINES,
      completed: LINES,
      failed: 0,
      pending: 0,
    });

    const output = join(dir, 'out.jsonl');
    const errors = join(dir, 'err.jsonl');
    const results = captureIo();
    expect(
      await runResults({ ...flags, job: 'last', output, errors, ordered: true }, results.io),
    ).toBe(0);
    const lines = readFileSync(output, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => l.custom_id)).toEqual(ids);
    expect(lines.every((l) => l.response.status_code === 200)).toBe(true);
    expect(readFileSync(errors, 'utf8')).toBe('');
  }, 120_000);
});
