import { createReadStream } from 'node:fs';
import { APIError } from 'openai';
import type { Batch } from 'openai/resources/batches';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  chatLine,
  readLines,
  startTestServer,
  waitForBatch,
  writeJsonl,
  type TestServer,
} from '../helpers/test-server.ts';

const LINES = 300;
const failsOnce = (i: number): boolean => i % 10 === 3;

describe('POST /v1/batches/{id}/retry', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ env: { OPENBATCH_CANCEL_GRACE_MS: '200' } });
  });
  afterAll(async () => t.close());

  const retry = (id: string, body: object = {}) =>
    t.client.post<Batch>(`/batches/${id}/retry`, { body });

  async function submit(lines: object[]): Promise<Batch> {
    const file = await t.client.files.create({
      file: createReadStream(writeJsonl(lines)),
      purpose: 'batch',
    });
    return t.client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
      metadata: { team: 'x' },
    });
  }

  it('makes a batch of exactly the 30 failed lines of 300, in input order, with retry_of', async () => {
    const ids = Array.from({ length: LINES }, (_, i) => `r-${i}`);
    // status=400x1: the first call answers 400 (final), any later call succeeds.
    const lines = ids.map((id, i) =>
      chatLine(id, `[sim:id=${id}${failsOnce(i) ? ';status=400x1' : ''}] q ${i}`),
    );
    const source = await waitForBatch(t.client, (await submit(lines)).id, 60_000);
    expect(source.request_counts).toEqual({ total: LINES, completed: 270, failed: 30 });

    const follow = await retry(source.id, { completion_window: '2h' });
    expect(follow.id).not.toBe(source.id);
    expect(follow.metadata).toEqual({ team: 'x', retry_of: source.id });
    expect(follow.completion_window).toBe('2h');
    expect(follow.endpoint).toBe('/v1/chat/completions');
    const failed = ids.filter((_, i) => failsOnce(i));
    const input = await readLines(t.client, follow.input_file_id);
    expect(input.map((l) => l.custom_id)).toEqual(failed);

    const done = await waitForBatch(t.client, follow.id, 60_000);
    expect(done.status).toBe('completed');
    expect(done.request_counts).toEqual({ total: 30, completed: 30, failed: 0 });
    const output = await readLines(t.client, done.output_file_id);
    expect(output.map((l) => l.custom_id).sort()).toEqual([...failed].sort());
  }, 120_000);

  it('retries the not-run lines of a cancelled batch', async () => {
    const lines = Array.from({ length: 20 }, (_, i) => chatLine(`c-${i}`, `[sim:latency=30000] q`));
    const batch = await submit(lines);
    await waitForBatch(t.client, batch.id, 30_000, (s) => s === 'in_progress');
    await t.client.batches.cancel(batch.id);
    const cancelled = await waitForBatch(t.client, batch.id, 30_000);
    expect(cancelled.status).toBe('cancelled');
    const follow = await retry(batch.id);
    expect(follow.completion_window).toBe('24h');
    const input = await readLines(t.client, follow.input_file_id);
    expect(input.map((l) => l.custom_id).sort()).toEqual(lines.map((l: any) => l.custom_id).sort());
    await t.client.batches.cancel(follow.id);
  }, 120_000);

  it('refuses a running batch, a batch without error lines and an unknown batch', async () => {
    const ok = await waitForBatch(t.client, (await submit([chatLine('ok', 'fine')])).id);
    const status = async (p: Promise<unknown>) =>
      p.then(
        () => 200,
        (e: unknown) => (e instanceof APIError ? e.status : -1),
      );
    expect(await status(retry(ok.id))).toBe(409);
    const running = await submit([chatLine('slow', '[sim:latency=30000] q')]);
    await expect(retry(running.id)).rejects.toThrow(/still (validating|in_progress)/);
    await t.client.batches.cancel(running.id);
    expect(await status(retry('batch_unknown'))).toBe(404);
    expect(await status(retry(ok.id, { window: '1h' }))).toBe(400);
  }, 60_000);
});
