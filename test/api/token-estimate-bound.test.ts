import { createReadStream } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  chatLine,
  startTestServer,
  waitForBatch,
  writeJsonl,
  type TestServer,
} from '../helpers/test-server.ts';

const ONE_MIB = 1024 * 1024;

/** Polls /health until `work` settles; returns the slowest answer in milliseconds. */
async function slowestHealth(baseURL: string, work: Promise<unknown>): Promise<number> {
  const health = baseURL.replace(/\/v1$/, '/health');
  let done = false;
  const finished = work.finally(() => (done = true));
  let slowest = 0;
  for (let i = 0; i < 2_000 && !done; i++) {
    const started = performance.now();
    const res = await fetch(health);
    await res.text();
    slowest = Math.max(slowest, performance.now() - started);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await finished;
  return slowest;
}

describe('token estimates are bounded (a 1 MiB line of one character under a TPM limit)', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({
      env: { OPENBATCH_UPSTREAM_TPM: '100000000', OPENBATCH_MAX_LINE_BYTES: String(2 * ONE_MIB) },
    });
  });
  afterAll(async () => t.close());

  // Loading an encoding costs a few hundred ms once per process; that is not what is measured.
  beforeAll(async () => {
    await t.client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'warm up' }],
      max_tokens: 5,
    });
  });

  it('runs a batch holding the line while /health answers in < 100 ms', async () => {
    const lines = [chatLine('big', 'a'.repeat(ONE_MIB)), chatLine('small', 'hello')];
    const file = await t.client.files.create({
      file: createReadStream(writeJsonl(lines)),
      purpose: 'batch',
    });
    const batch = await t.client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    const work = waitForBatch(t.client, batch.id, 60_000);
    const slowest = await slowestHealth(t.baseURL, work);
    const done = await work;
    expect(done.status).toBe('completed');
    expect(done.request_counts).toMatchObject({ total: 2, completed: 2 });
    expect(slowest).toBeLessThan(100);
  }, 90_000);

  it('forwards a 1 MiB real-time prompt while /health answers in < 100 ms', async () => {
    const work = t.client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'b'.repeat(ONE_MIB) }],
      max_tokens: 5,
    });
    const slowest = await slowestHealth(t.baseURL, work);
    expect((await work).object).toBe('chat.completion');
    expect(slowest).toBeLessThan(100);
  }, 90_000);
});
