import { createReadStream } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  chatLine,
  readLines,
  startTestServer,
  waitForBatch,
  writeJsonl,
  type TestServer,
} from '../helpers/test-server.ts';

/** Spec §5.2 routing: which line goes to which file, how it is counted, and how files are spelled. */

async function runBatch(t: TestServer, lines: object[]) {
  const path = writeJsonl(lines);
  const file = await t.client.files.create({ file: createReadStream(path), purpose: 'batch' });
  const batch = await t.client.batches.create({
    input_file_id: file.id,
    endpoint: '/v1/chat/completions',
    completion_window: '24h',
  });
  return waitForBatch(t.client, batch.id, 25_000);
}

async function rawText(t: TestServer, fileId: string): Promise<string> {
  return (await t.client.files.content(fileId)).text();
}

describe('line outcomes: 200 → output, 4xx/5xx → error file', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ env: { OPENBATCH_MAX_ATTEMPTS: '2' } });
  });
  afterAll(async () => t.close());

  it('routes 200, 400 and 500 lines, counts them exactly and sums usage over the output', async () => {
    const okIds = Array.from({ length: 6 }, (_, i) => `ok-${i}`);
    const lines = [
      ...okIds.map((id) => chatLine(id, `Answer question ${id}`)),
      chatLine('bad-a', 'invalid please [sim:status=400;id=bad-a]'),
      chatLine('bad-b', 'invalid again [sim:status=400;id=bad-b]'),
      chatLine('boom-a', 'server error [sim:status=500;id=boom-a]'),
      chatLine('boom-b', 'server error too [sim:status=500;id=boom-b]'),
    ];
    const done = await runBatch(t, lines);
    expect(done.status).toBe('completed');
    expect(done.completed_at).not.toBeNull();
    expect(done.request_counts).toEqual({ total: 10, completed: 6, failed: 4 });
    expect(done.output_file_id).not.toBeNull();
    expect(done.error_file_id).not.toBeNull();

    const output = await readLines(t.client, done.output_file_id);
    const errors = await readLines(t.client, done.error_file_id);
    expect(output).toHaveLength(6);
    expect(errors).toHaveLength(4);

    // Every custom_id exactly once across both files.
    const all = [...output, ...errors].map((l) => l.custom_id as string).sort();
    expect(all).toEqual(['bad-a', 'bad-b', 'boom-a', 'boom-b', ...okIds].sort());
    expect(new Set([...output, ...errors].map((l) => l.id as string)).size).toBe(10);

    for (const line of output) {
      expect(okIds).toContain(line.custom_id);
      expect(line.id).toMatch(/^batch_req_/);
      expect(line.error).toBeNull();
      expect(line.response.status_code).toBe(200);
      expect(typeof line.response.request_id).toBe('string');
      expect(line.response.body.object).toBe('chat.completion');
      expect(line.response.body.usage.prompt_tokens).toBeGreaterThan(0);
    }

    const byId = new Map(errors.map((l) => [l.custom_id as string, l]));
    for (const [id, status, type] of [
      ['bad-a', 400, 'invalid_request_error'],
      ['bad-b', 400, 'invalid_request_error'],
      ['boom-a', 500, 'server_error'],
      ['boom-b', 500, 'server_error'],
    ] as const) {
      const line = byId.get(id);
      expect(line, id).toBeDefined();
      expect(line!.id).toMatch(/^batch_req_/);
      expect(line!.error).toBeNull();
      expect(line!.response.status_code).toBe(status);
      expect(typeof line!.response.request_id).toBe('string');
      expect(line!.response.body).toEqual({
        error: { message: expect.any(String), type, param: null, code: null },
      });
      expect(line!.response.body.error.message.length).toBeGreaterThan(0);
    }

    // Usage is the sum over the output lines' bodies.
    const sum = (key: string) =>
      output.reduce((n, l) => n + (l.response.body.usage[key] as number), 0);
    expect(done.usage).toBeDefined();
    expect(done.usage!.input_tokens).toBe(sum('prompt_tokens'));
    expect(done.usage!.output_tokens).toBe(sum('completion_tokens'));
    expect(done.usage!.total_tokens).toBe(sum('total_tokens'));
    expect(done.usage!.total_tokens).toBe(done.usage!.input_tokens + done.usage!.output_tokens);

    // The 400s were sent once, the 500s until max attempts (2).
    const callsFor = (id: string) =>
      t.sim.calls().filter((c) => c.marker?.includes(`id=${id}`)).length;
    expect(callsFor('bad-a')).toBe(1);
    expect(callsFor('bad-b')).toBe(1);
    expect(callsFor('boom-a')).toBe(2);
    expect(callsFor('boom-b')).toBe(2);
  });

  it('writes output and error lines with Python json.dumps spacing', async () => {
    const done = await runBatch(t, [
      chatLine('spaced-ok', 'hello there'),
      chatLine('spaced-bad', 'nope [sim:status=400;id=spaced-bad]'),
    ]);
    expect(done.request_counts).toEqual({ total: 2, completed: 1, failed: 1 });
    for (const fileId of [done.output_file_id!, done.error_file_id!]) {
      const text = await rawText(t, fileId);
      expect(text.endsWith('\n')).toBe(true);
      const rawLines = text.split('\n').filter(Boolean);
      expect(rawLines).toHaveLength(1);
      const raw = rawLines[0]!;
      expect(raw).toMatch(
        /^\{"id": "batch_req_[^"]+", "custom_id": "spaced-(ok|bad)", "response": \{"status_code": \d{3}, "request_id": "/,
      );
      expect(raw).toContain('", "custom_id": "');
      expect(raw.endsWith(', "error": null}')).toBe(true);
      // No compact separators outside strings.
      const structural = raw.replace(/"(?:[^"\\]|\\.)*"/g, '""');
      expect(structural).not.toMatch(/,(?! )/);
      expect(structural).not.toMatch(/:(?! )/);
    }
  });

  it('leaves error_file_id null for an all-success batch', async () => {
    const ids = ['s-1', 's-2', 's-3', 's-4'];
    const done = await runBatch(
      t,
      ids.map((id) => chatLine(id, `fine ${id}`)),
    );
    expect(done.status).toBe('completed');
    expect(done.request_counts).toEqual({ total: 4, completed: 4, failed: 0 });
    expect(done.error_file_id).toBeNull();
    expect(done.output_file_id).not.toBeNull();
    const output = await readLines(t.client, done.output_file_id);
    expect(output.map((l) => l.custom_id as string).sort()).toEqual(ids);
  });

  it("leaves output_file_id null for an all-400 batch, which still ends 'completed'", async () => {
    const ids = ['f-1', 'f-2', 'f-3'];
    const done = await runBatch(
      t,
      ids.map((id) => chatLine(id, `reject [sim:status=400;id=${id}]`)),
    );
    expect(done.status).toBe('completed');
    expect(done.request_counts).toEqual({ total: 3, completed: 0, failed: 3 });
    expect(done.output_file_id).toBeNull();
    expect(done.error_file_id).not.toBeNull();
    expect(done.usage?.total_tokens).toBe(0);
    const errors = await readLines(t.client, done.error_file_id);
    expect(errors.map((l) => l.custom_id as string).sort()).toEqual(ids);
    for (const line of errors) {
      expect(line.response.status_code).toBe(400);
      expect(line.response.body.error.type).toBe('invalid_request_error');
      expect(line.error).toBeNull();
    }
  });

  it('names the output and error files after the batch, with purpose batch_output', async () => {
    const done = await runBatch(t, [
      chatLine('n-ok', 'fine'),
      chatLine('n-bad', 'no [sim:status=400;id=n-bad]'),
    ]);
    const out = await t.client.files.retrieve(done.output_file_id!);
    const err = await t.client.files.retrieve(done.error_file_id!);
    expect(out).toMatchObject({ purpose: 'batch_output', filename: `${done.id}_output.jsonl` });
    expect(err).toMatchObject({ purpose: 'batch_output', filename: `${done.id}_error.jsonl` });
    expect(out.bytes).toBe(Buffer.byteLength(await rawText(t, out.id)));
  });
});
