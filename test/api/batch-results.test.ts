import { createReadStream } from 'node:fs';
import { APIError } from 'openai';
import type { Batch } from 'openai/resources/batches';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runResults } from '../../src/cli/commands/results.ts';
import { fetchBatchResultsPage, followBatchResults } from '../../src/sdk/batch-results.ts';
import {
  chatLine,
  readLines,
  startTestServer,
  waitForBatch,
  writeJsonl,
  type TestServer,
} from '../helpers/test-server.ts';
import { captureIo } from '../sdk/helpers/capture-io.ts';

const TERMINAL = ['completed', 'failed', 'expired', 'cancelled'];

describe('GET /v1/batches/{id}/results while the batch runs', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({
      env: { OPENBATCH_UPSTREAM_MAX_CONCURRENCY: '8', OPENBATCH_CANCEL_GRACE_MS: '100' },
    });
  });
  afterAll(async () => t.close());

  async function submit(lines: object[]): Promise<Batch> {
    const path = writeJsonl(lines);
    const file = await t.client.files.create({ file: createReadStream(path), purpose: 'batch' });
    return t.client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
  }

  /** Pages through the results until the batch ended and nothing is left; notes when each line came. */
  async function follow(batchId: string, limit: number) {
    const seen: { custom_id: string; running: boolean; error: boolean }[] = [];
    let after: string | undefined;
    for (let pages = 0; pages < 5_000; pages++) {
      const page = await fetchBatchResultsPage(t.client, batchId, { after, limit });
      expect(page.data.length).toBeLessThanOrEqual(limit);
      const running = !TERMINAL.includes(page.batch_status);
      for (const line of page.data)
        seen.push({
          custom_id: line.custom_id as string,
          running,
          error: line.error !== null || (line.response as any).status_code >= 400,
        });
      after = page.next_cursor;
      if (!page.has_more && !running) return seen;
      if (!page.has_more) await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error('results did not end');
  }

  it('gives each of 300 lines exactly once, some before the batch completes, the same as its files', async () => {
    const ids = Array.from({ length: 300 }, (_, i) => `l-${i}`);
    // Latencies differ per line, so lines finish out of input order; every 25th fails (400).
    const lines = ids.map((id, i) =>
      chatLine(
        id,
        `[sim:latency=${10 + ((i * 37) % 60)}${i % 25 === 0 ? ';status=400' : ''}] q ${i}`,
      ),
    );
    const batch = await submit(lines);
    const seen = await follow(batch.id, 7);
    const done = await t.client.batches.retrieve(batch.id);
    expect(done.status).toBe('completed');
    expect(seen.map((s) => s.custom_id).sort()).toEqual([...ids].sort());
    expect(new Set(seen.map((s) => s.custom_id)).size).toBe(300);
    expect(seen.filter((s) => s.running).length).toBeGreaterThan(0);
    expect(seen.filter((s) => s.error).length).toBe(12);
    // The lines are those of the output and error files, byte for byte the same objects.
    const files = [
      ...(await readLines(t.client, done.output_file_id)),
      ...(await readLines(t.client, done.error_file_id)),
    ];
    const again = [];
    for await (const line of followBatchResults(t.client, batch.id, { limit: 1000 }))
      again.push(line);
    expect(again).toEqual(files);
  }, 120_000);

  // Its per-line latencies are real-time only: a native batch has finished before the cancel.
  it.skipIf(process.env.OPENBATCH_TEST_BATCH_MODE === 'native')(
    'includes the lines a cancel stopped, once, after the batch ends',
    async () => {
      const ids = Array.from({ length: 60 }, (_, i) => `c-${i}`);
      const lines = ids.map((id, i) => chatLine(id, `[sim:latency=${i < 20 ? 10 : 20000}] q`));
      const batch = await submit(lines);
      const following = follow(batch.id, 10);
      await waitForBatch(t.client, batch.id, 30_000, (s) => s === 'in_progress');
      await new Promise((r) => setTimeout(r, 300));
      await t.client.batches.cancel(batch.id);
      const seen = await following;
      expect((await t.client.batches.retrieve(batch.id)).status).toBe('cancelled');
      expect(seen.map((s) => s.custom_id).sort()).toEqual([...ids].sort());
      expect(seen.filter((s) => s.error).length).toBeGreaterThanOrEqual(40);
    },
    60_000,
  );

  it('follows a batch from the CLI, and refuses a cursor it did not hand out', async () => {
    const ids = Array.from({ length: 40 }, (_, i) => `f-${i}`);
    const batch = await submit(ids.map((id) => chatLine(id, '[sim:latency=20] q')));
    const cli = captureIo();
    const code = await runResults(
      { job: batch.id, follow: true, baseUrl: t.baseURL, apiKey: 'test-key', pollIntervalMs: 50 },
      cli.io,
    );
    expect(code, cli.stderr()).toBe(0);
    const printed = cli
      .stdout()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).custom_id);
    expect(printed.sort()).toEqual([...ids].sort());

    const status = (after: string) =>
      fetchBatchResultsPage(t.client, batch.id, { after }).then(
        () => 200,
        (e: unknown) => (e instanceof APIError ? e.status : -1),
      );
    expect(await status('nonsense')).toBe(400);
    expect(await status('999999999.0')).toBe(400);
    expect(await status('5.0')).toBe(400); // not a line start
    expect(await status('0.0')).toBe(200);
  }, 60_000);
});
