import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBatch } from '../../src/sdk/index.ts';
import { createBatchClient } from '../../src/sdk/batch-client.ts';
import { memoryJobStore } from '../../src/sdk/job-store.ts';
import { arrayLineSource } from '../../src/sdk/line-source.ts';
import { submitJob } from '../../src/sdk/submit-job.ts';
import { InvalidLinesError } from '../../src/sdk/errors.ts';
import { DEFAULT_SPLIT_LIMITS } from '../../src/sdk/split-plan.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

const body = (i: number, extra = '') => ({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: `question ${i}${extra}` }],
  max_tokens: 20,
});

describe('resuming jobs', () => {
  let t: TestServer;
  const dir = mkdtempSync(join(tmpdir(), 'openbatch-resume-'));
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const batchCount = async (): Promise<number> => {
    let n = 0;
    for await (const _ of t.client.batches.list({ limit: 100 })) n += 1;
    return n;
  };

  it('runBatch stops on abort, and the same jobId resumes without creating batches again', async () => {
    const requests = Array.from({ length: 40 }, (_, i) => body(i, ' [sim:latency=300]'));
    const options = {
      baseURL: t.baseURL,
      apiKey: 'test-key',
      jobsDir: dir,
      jobId: 'job_resume',
      batchSize: 10,
      pollIntervalMs: 50,
    };
    const controller = new AbortController();
    await expect(
      runBatch(requests, {
        ...options,
        signal: controller.signal,
        onProgress: () => controller.abort(new Error('stop')),
      }),
    ).rejects.toThrow('stop');
    const before = await batchCount();
    const run = await runBatch(requests, options);
    expect(await batchCount()).toBe(before);
    expect(run.jobId).toBe('job_resume');
    expect(run.batches).toHaveLength(4);
    expect(run.results.map((r) => r.custom_id)).toEqual(requests.map((_, i) => `request-${i}`));
    expect(run.results.every((r) => r.response?.status_code === 200)).toBe(true);
  });

  it('finds a batch created just before a crash instead of creating it twice', async () => {
    const client = createBatchClient({ baseURL: t.baseURL, apiKey: 'test-key' });
    const store = memoryJobStore();
    const source = arrayLineSource(
      Array.from({ length: 6 }, (_, i) =>
        JSON.stringify({
          custom_id: `c${i}`,
          method: 'POST',
          url: '/v1/chat/completions',
          body: body(i),
        }),
      ),
    );
    const limits = { ...DEFAULT_SPLIT_LIMITS, maxLines: 2 };
    const job = await submitJob({ client, store, source, jobId: 'job_crash', limits });
    expect(job.batches).toHaveLength(3);
    // The manifest as a crash after creating part 2 (but before saving it) would leave it.
    const crashed = { ...job, batches: job.batches.slice(0, 2) };
    await store.save(crashed);
    const before = await batchCount();
    const resumed = await submitJob({ client, store, source, jobId: 'job_crash', limits });
    expect(await batchCount()).toBe(before);
    expect(resumed.batches.map((b) => b.id)).toEqual(job.batches.map((b) => b.id));
  });

  it('refuses a file with bad lines before uploading anything', async () => {
    const client = createBatchClient({ baseURL: t.baseURL, apiKey: 'test-key' });
    // Uploads only: batches of the tests before may still be writing their output files.
    const uploads = async () => (await t.client.files.list({ purpose: 'batch' })).data.length;
    const files = await uploads();
    const lines = [
      JSON.stringify({
        custom_id: 'a',
        method: 'POST',
        url: '/v1/chat/completions',
        body: body(1),
      }),
      '{"nope"',
      JSON.stringify({
        custom_id: 'a',
        method: 'POST',
        url: '/v1/chat/completions',
        body: body(2),
      }),
    ];
    const error = await submitJob({
      client,
      store: memoryJobStore(),
      source: arrayLineSource(lines),
      limits: DEFAULT_SPLIT_LIMITS,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidLinesError);
    expect((error as InvalidLinesError).issues.map((i) => [i.line, i.code])).toEqual([
      [2, 'invalid_json_line'],
      [3, 'duplicate_custom_id'],
    ]);
    expect(await uploads()).toBe(files);
  });
});
