import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runResults } from '../../src/cli/commands/results.ts';
import { runSubmit } from '../../src/cli/commands/submit.ts';
import { fsJobStore } from '../../src/sdk/job-store.ts';
import { createSimulator, type Simulator } from '../../src/simulator/simulator.ts';
import { spawnServer, type ServerProcess } from '../helpers/server-process.ts';
import { writeJsonl } from '../helpers/test-server.ts';
import { captureIo } from '../sdk/helpers/capture-io.ts';

const LINES = 120_000;

const idsIn = (path: string): string[] =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { custom_id: string }).custom_id);

describe('submit --wait of a file larger than one batch', () => {
  // The server runs in its own process (the simulator and the CLI in this one), so the two cores
  // share the work: in one process this test spends ~40% longer on the 120,000 calls.
  let sim: Simulator;
  let server: ServerProcess;
  let baseUrl: string;
  const dir = mkdtempSync(join(tmpdir(), 'openbatch-split-'));
  beforeAll(async () => {
    sim = createSimulator();
    const { url } = await sim.listen(0);
    server = await spawnServer(join(dir, 'data'), {
      OPENBATCH_UPSTREAM_URL: `${url}/v1`,
      OPENBATCH_MAX_LINES: '50000',
      OPENBATCH_TICK_MS: '50',
    });
    baseUrl = server.baseURL;
  });
  afterAll(async () => {
    server.child.kill('SIGTERM');
    await server.exited;
    await sim.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('splits 120,000 lines into three batches, waits with one bar, and merges the results', async () => {
    // Ids in an order that sorting would not reproduce, so "input order" is really tested.
    const ids = Array.from({ length: LINES }, (_, i) => `r${(i * 7919) % LINES}`);
    const input = writeJsonl(
      ids.map((id) => ({
        custom_id: id,
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], max_tokens: 1 },
      })),
    );
    const jobsDir = join(dir, 'jobs');
    const submit = captureIo();
    const code = await runSubmit(
      {
        input,
        baseUrl,
        apiKey: 'test-key',
        jobsDir,
        wait: true,
        pollIntervalMs: 500,
        progressIntervalMs: 1_000,
      },
      submit.io,
    );
    expect(code, submit.stderr()).toBe(0);
    const [job] = await fsJobStore(jobsDir).list();
    expect(job!.batches.map((b) => b.lines)).toEqual([50_000, 50_000, 20_000]);
    const progress = submit
      .stderr()
      .split('\n')
      .filter((l) => l.startsWith(`${job!.id}:`));
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.every((l) => l.includes('/120,000 done'))).toBe(true);
    expect(progress.at(-1)).toContain('120,000/120,000 done');

    const merged = captureIo();
    const output = join(dir, 'merged.jsonl');
    const errors = join(dir, 'merged-errors.jsonl');
    expect(
      await runResults(
        { job: job!.id, jobsDir, baseUrl, apiKey: 'test-key', output, errors },
        merged.io,
      ),
    ).toBe(0);
    const unordered = idsIn(output);
    expect(unordered).toHaveLength(LINES);
    expect(new Set(unordered)).toEqual(new Set(ids));
    expect(idsIn(errors)).toEqual([]);

    const ordered = captureIo();
    expect(
      await runResults(
        { job: 'last', jobsDir, apiKey: 'test-key', output, errors, ordered: true },
        ordered.io,
      ),
    ).toBe(0);
    expect(idsIn(output)).toEqual(ids);
    expect(ordered.stdout()).toContain('| Total');
  }, 240_000);
});
