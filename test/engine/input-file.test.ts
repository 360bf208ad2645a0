import { createReadStream, existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  chatLine,
  readLines,
  startTestServer,
  waitForBatch,
  writeJsonl,
  type TestServer,
} from '../helpers/test-server.ts';

/** Lines run from their input file, never from copies: that file must outlive its batch's use. */
describe('a batch and its input file', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({
      sim: { latencyMs: 30 },
      env: { OPENBATCH_UPSTREAM_MAX_CONCURRENCY: '4' },
    });
  });
  afterAll(async () => t.close());

  it('completes every line when its input file is deleted while it runs, then drops the blob', async () => {
    const ids = Array.from({ length: 200 }, (_, i) => `del-${i}`);
    const path = writeJsonl(ids.map((id) => chatLine(id, `line ${id}`)));
    const file = await t.client.files.create({ file: createReadStream(path), purpose: 'batch' });
    const created = await t.client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    await waitForBatch(t.client, created.id, 30_000, (s) => s === 'in_progress');
    await t.client.files.delete(file.id);
    const blob = join(t.dataDir, 'blobs', file.id);
    expect(existsSync(blob)).toBe(true);

    const batch = await waitForBatch(t.client, created.id, 60_000);
    expect(batch.status).toBe('completed');
    const output = await readLines(t.client, batch.output_file_id);
    expect(output.map((l) => l.custom_id).sort()).toEqual([...ids].sort());
    expect(existsSync(blob)).toBe(false);
  });

  it('keeps output lines for custom_ids with any characters, split across chunk boundaries', async () => {
    // 300 lines (three chunks), with CRLF endings, blank lines and non-ASCII ids.
    const ids = Array.from({ length: 300 }, (_, i) => `ü-${i}-"q"\\`);
    const text =
      '\ufeff' +
      ids
        .map((id, i) => JSON.stringify(chatLine(id, `x ${i}`)) + (i % 7 === 0 ? '\r\n\r\n' : '\n'))
        .join('');
    const path = writeJsonl([text.trimEnd()]);
    const file = await t.client.files.create({ file: createReadStream(path), purpose: 'batch' });
    const created = await t.client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    const batch = await waitForBatch(t.client, created.id, 60_000);
    expect(batch.status).toBe('completed');
    expect(batch.request_counts).toMatchObject({ total: 300, completed: 300, failed: 0 });
    const output = await readLines(t.client, batch.output_file_id);
    expect(output.map((l) => l.custom_id).sort()).toEqual([...ids].sort());
  });
});
