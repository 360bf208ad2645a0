import { createReadStream } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  chatLine,
  readLines,
  startTestServer,
  waitForBatch,
  writeJsonl,
  type TestServer,
} from '../helpers/test-server.ts';

/** Spec §4.3 expiry and cancel paths, §5.2 batch_expired / batch_cancelled lines. */

const EXPIRED_ERROR = {
  code: 'batch_expired',
  message: 'This request could not be executed before the completion window expired.',
};
const CANCELLED_ERROR = {
  code: 'batch_cancelled',
  message: 'This request could not be executed before the batch was cancelled.',
};

async function createBatch(t: TestServer, lines: object[], completionWindow = '24h') {
  const path = writeJsonl(lines);
  const file = await t.client.files.create({ file: createReadStream(path), purpose: 'batch' });
  // '20s' is an openbatch extension; the SDK types only know '24h'.
  return t.client.batches.create({
    input_file_id: file.id,
    endpoint: '/v1/chat/completions',
    completion_window: completionWindow as '24h',
  });
}

/** Polls until `ok(batch)` holds (bounded). */
async function pollUntil(
  t: TestServer,
  id: string,
  ok: (b: OpenAI.Batches.Batch) => boolean,
  timeoutMs = 20_000,
) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const batch = await t.client.batches.retrieve(id);
    if (ok(batch)) return batch;
    if (Date.now() > deadline)
      throw new Error(`batch ${id} never satisfied the condition (status ${batch.status})`);
    await sleep(25);
  }
}

const lineIds = (prefix: string, n: number) =>
  Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
const markerId = (marker: string | null) =>
  marker
    ?.split(';')
    .find((p) => p.startsWith('id='))
    ?.slice(3) ?? null;

describe('expiry of a batch whose upstream is too slow', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({
      env: { OPENBATCH_UPSTREAM_MAX_CONCURRENCY: '2', OPENBATCH_EXPIRY_GRACE_MS: '2000' },
      sim: { latencyMs: 1000 },
    });
  });
  afterAll(async () => t.close());

  it('ends expired: finished lines in the output, the rest batch_expired in the error file and not counted as failed', async () => {
    // 2 slots × 1 s per call: about 40 of 60 lines can run in a 20 s window.
    const ids = lineIds('exp', 60);
    const created = await createBatch(
      t,
      ids.map((id) => chatLine(id, `slow ${id} [sim:id=${id}]`)),
      '20s',
    );
    expect(created.expires_at).toBe(created.created_at + 20);
    const done = await waitForBatch(t.client, created.id, 28_000);

    expect(done.status).toBe('expired');
    expect(done.expired_at).toEqual(expect.any(Number));
    expect(done.expired_at!).toBeGreaterThanOrEqual(done.expires_at!);
    expect(done.completed_at).toBeNull();
    expect(done.cancelled_at).toBeNull();

    const output = await readLines(t.client, done.output_file_id ?? null);
    const errors = await readLines(t.client, done.error_file_id ?? null);
    expect(output.length).toBeGreaterThan(0);
    expect(errors.length).toBeGreaterThan(0);
    // Every custom_id exactly once across both files.
    expect([...output, ...errors].map((l) => l.custom_id as string).sort()).toEqual(
      [...ids].sort(),
    );

    for (const line of output) {
      expect(line.response.status_code).toBe(200);
      expect(line.error).toBeNull();
    }
    for (const line of errors) {
      expect(line.id).toMatch(/^batch_req_/);
      expect(line.response).toBeNull();
      expect(line.error).toEqual(EXPIRED_ERROR);
    }
    // Expired lines are not counted in failed.
    expect(done.request_counts).toEqual({ total: 60, completed: output.length, failed: 0 });

    // Expired lines never reached the upstream; each finished one did exactly once.
    const called = t.sim.calls().map((c) => markerId(c.marker));
    for (const line of errors) expect(called, line.custom_id).not.toContain(line.custom_id);
    for (const line of output)
      expect(
        called.filter((c) => c === line.custom_id),
        line.custom_id,
      ).toHaveLength(1);
    const usage = output.reduce((n, l) => n + (l.response.body.usage.total_tokens as number), 0);
    expect(done.usage?.total_tokens).toBe(usage);

    // An expired batch is terminal: cancelling it is a conflict.
    const cancel = t.client.batches.cancel(done.id);
    await expect(cancel).rejects.toBeInstanceOf(OpenAI.ConflictError);
    await expect(cancel).rejects.toMatchObject({ status: 409 });
    expect((await t.client.batches.retrieve(done.id)).status).toBe('expired');
  }, 30_000);
});

describe('expiry whose grace runs out before in-flight lines finish', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({
      env: { OPENBATCH_UPSTREAM_MAX_CONCURRENCY: '2', OPENBATCH_EXPIRY_GRACE_MS: '300' },
    });
  });
  afterAll(async () => t.close());

  it('aborts the in-flight calls and reports every line as batch_expired, with no output file', async () => {
    const ids = lineIds('hung', 5);
    const created = await createBatch(
      t,
      ids.map((id) => chatLine(id, `too slow ${id} [sim:latency=25000;id=${id}]`)),
      '10s',
    );
    const done = await waitForBatch(t.client, created.id, 20_000);
    expect(done.status).toBe('expired');
    expect(done.expired_at).toEqual(expect.any(Number));
    expect(done.output_file_id ?? null).toBeNull();
    expect(done.request_counts).toEqual({ total: 5, completed: 0, failed: 0 });
    const errors = await readLines(t.client, done.error_file_id ?? null);
    expect(errors.map((l) => l.custom_id as string).sort()).toEqual([...ids].sort());
    for (const line of errors) expect(line).toMatchObject({ response: null, error: EXPIRED_ERROR });
    // Only the two lines that held the slots were ever sent.
    expect(t.sim.calls()).toHaveLength(2);
  }, 30_000);
});

describe('cancel of a running batch (grace long enough for in-flight lines)', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({
      env: { OPENBATCH_UPSTREAM_MAX_CONCURRENCY: '2', OPENBATCH_CANCEL_GRACE_MS: '1000' },
      sim: { latencyMs: 300 },
    });
  });
  afterAll(async () => t.close());

  it('goes cancelling → cancelled, keeps partial output, stops calling the upstream, and is idempotent', async () => {
    const ids = lineIds('can', 50);
    const created = await createBatch(
      t,
      ids.map((id) => chatLine(id, `work ${id} [sim:id=${id}]`)),
    );
    await pollUntil(
      t,
      created.id,
      (b) => b.status === 'in_progress' && (b.request_counts?.completed ?? 0) >= 4,
    );

    const cancelling = await t.client.batches.cancel(created.id);
    expect(cancelling.id).toBe(created.id);
    expect(cancelling.status).toBe('cancelling');
    expect(cancelling.cancelling_at).toEqual(expect.any(Number));
    expect(cancelling.cancelled_at).toBeNull();

    const done = await waitForBatch(t.client, created.id, 20_000);
    const callsAtCancelled = t.sim.calls().length;
    expect(done.status).toBe('cancelled');
    expect(done.cancelled_at).toEqual(expect.any(Number));
    expect(done.cancelling_at).toBe(cancelling.cancelling_at);
    expect(done.completed_at).toBeNull();

    const output = await readLines(t.client, done.output_file_id ?? null);
    const errors = await readLines(t.client, done.error_file_id ?? null);
    expect(output.length).toBeGreaterThanOrEqual(4);
    expect(errors.length).toBeGreaterThan(0);
    expect(output.length + errors.length).toBe(50);
    expect([...output, ...errors].map((l) => l.custom_id as string).sort()).toEqual(
      [...ids].sort(),
    );
    for (const line of output) {
      expect(line.response.status_code).toBe(200);
      expect(line.error).toBeNull();
    }
    for (const line of errors) {
      expect(line.response).toBeNull();
      expect(line.error).toEqual(CANCELLED_ERROR);
    }
    // Never-run lines are not counted in failed.
    expect(done.request_counts).toEqual({ total: 50, completed: output.length, failed: 0 });
    // Cancelled lines never reached the upstream.
    const called = t.sim.calls().map((c) => markerId(c.marker));
    for (const line of errors) expect(called, line.custom_id).not.toContain(line.custom_id);

    // No upstream call after 'cancelled'.
    await sleep(1_000);
    expect(t.sim.calls().length).toBe(callsAtCancelled);

    // Cancel again: 200, still 'cancelled', timestamps unchanged.
    for (let i = 0; i < 2; i++) {
      const again = await t.client.batches.cancel(created.id);
      expect(again.status).toBe('cancelled');
      expect(again.cancelled_at).toBe(done.cancelled_at);
      expect(again.cancelling_at).toBe(done.cancelling_at);
    }
    expect(t.sim.calls().length).toBe(callsAtCancelled);
  }, 30_000);

  it('answers 409 Conflict to a cancel of a completed batch', async () => {
    const created = await createBatch(t, [
      chatLine('fin-1', 'quick'),
      chatLine('fin-2', 'quick too'),
    ]);
    const done = await waitForBatch(t.client, created.id, 20_000);
    expect(done.status).toBe('completed');
    const cancel = t.client.batches.cancel(created.id);
    await expect(cancel).rejects.toBeInstanceOf(OpenAI.ConflictError);
    await expect(cancel).rejects.toMatchObject({ status: 409 });
    const after = await t.client.batches.retrieve(created.id);
    expect(after.status).toBe('completed');
    expect(after.cancelling_at).toBeNull();
    expect(after.output_file_id).toBe(done.output_file_id);
  }, 30_000);
});

describe('cancel whose grace runs out before in-flight lines finish', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({
      env: { OPENBATCH_UPSTREAM_MAX_CONCURRENCY: '2', OPENBATCH_CANCEL_GRACE_MS: '300' },
    });
  });
  afterAll(async () => t.close());

  it('aborts the in-flight calls and reports those lines as batch_cancelled', async () => {
    const ids = lineIds('slow', 6);
    const created = await createBatch(
      t,
      ids.map((id) => chatLine(id, `very slow ${id} [sim:latency=20000;id=${id}]`)),
    );
    // Both slots busy with 20 s calls.
    const deadline = Date.now() + 10_000;
    while (t.sim.calls().length < 2) {
      if (Date.now() > deadline) throw new Error('the upstream never got the first two calls');
      await sleep(20);
    }
    const cancelling = await t.client.batches.cancel(created.id);
    expect(cancelling.status).toBe('cancelling');
    const done = await waitForBatch(t.client, created.id, 10_000);
    expect(done.status).toBe('cancelled');
    expect(done.output_file_id ?? null).toBeNull();
    expect(done.request_counts).toEqual({ total: 6, completed: 0, failed: 0 });
    const errors = await readLines(t.client, done.error_file_id ?? null);
    expect(errors.map((l) => l.custom_id as string).sort()).toEqual([...ids].sort());
    for (const line of errors)
      expect(line).toMatchObject({ response: null, error: CANCELLED_ERROR });
    expect(t.sim.calls()).toHaveLength(2);
  }, 30_000);
});

describe('cancel while validating', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(async () => t.close());

  it('ends cancelled without any upstream call', async () => {
    const ids = lineIds('val', 5_000);
    const path = writeJsonl(ids.map((id) => chatLine(id, `never sent ${id} [sim:id=${id}]`)));
    const file = await t.client.files.create({ file: createReadStream(path), purpose: 'batch' });
    const created = await t.client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    const cancelling = await t.client.batches.cancel(created.id);
    expect(['cancelling', 'cancelled']).toContain(cancelling.status);
    expect(cancelling.cancelling_at).toEqual(expect.any(Number));

    const done = await waitForBatch(t.client, created.id, 20_000);
    expect(done.status).toBe('cancelled');
    expect(done.cancelled_at).toEqual(expect.any(Number));
    // Nothing of this batch ran: no line may be claimed before the batch is in_progress.
    expect(t.sim.calls()).toHaveLength(0);
    expect(done.in_progress_at ?? null).toBeNull();
    expect(done.output_file_id ?? null).toBeNull();
    expect(done.request_counts?.completed).toBe(0);
    expect(done.request_counts?.failed).toBe(0);
    // Whatever the error file holds, it agrees with request_counts.total (§5.3 invariant).
    const errors = await readLines(t.client, done.error_file_id ?? null);
    expect(errors.length).toBe(done.request_counts?.total);
    for (const line of errors)
      expect(line).toMatchObject({ response: null, error: CANCELLED_ERROR });
    await sleep(500);
    expect(t.sim.calls()).toHaveLength(0);
  }, 30_000);
});
