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

/** Retry behaviour end to end: random faults, attempt caps, 429 refunds, transport faults. */

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

/** Upstream calls whose `[sim:…]` marker carries `id=<id>` (ids are chosen so none prefixes another). */
const callsFor = (t: TestServer, id: string) =>
  t.sim.calls().filter((c) => c.marker !== null && c.marker.split(';').includes(`id=${id}`));

describe('random 500/429 faults with enough attempts', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({
      env: { OPENBATCH_MAX_ATTEMPTS: '8' },
      sim: { failRate: 0.3, failStatuses: [500, 429], seed: 7 },
    });
  });
  afterAll(async () => t.close());

  it('completes a 100-line batch with every line in the output', async () => {
    const ids = Array.from({ length: 100 }, (_, i) => `line-${i}`);
    const done = await runBatch(
      t,
      ids.map((id) => chatLine(id, `Question ${id} [sim:id=${id}]`)),
    );
    expect(done.status).toBe('completed');
    expect(done.request_counts).toEqual({ total: 100, completed: 100, failed: 0 });
    expect(done.error_file_id).toBeNull();
    const output = await readLines(t.client, done.output_file_id);
    expect(output.map((l) => l.custom_id as string).sort()).toEqual([...ids].sort());
    for (const line of output) {
      expect(line.response.status_code).toBe(200);
      expect(line.error).toBeNull();
    }
    // The faults really happened, were retried, and each line got exactly one 200.
    const calls = t.sim.calls();
    expect(calls.some((c) => c.status === 500)).toBe(true);
    expect(calls.some((c) => c.status === 429)).toBe(true);
    expect(calls.filter((c) => c.status === 200)).toHaveLength(100);
    expect(calls.length).toBeGreaterThan(100);
    for (const id of ids)
      expect(
        callsFor(t, id).filter((c) => c.status === 200),
        id,
      ).toHaveLength(1);
  });
});

describe('attempt caps and transport faults (max attempts 3)', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ env: { OPENBATCH_MAX_ATTEMPTS: '3' } });
  });
  afterAll(async () => t.close());

  it('sends a persistent 500 exactly max-attempts times, then writes it to the error file', async () => {
    const done = await runBatch(t, [
      chatLine('cap-500', 'always failing [sim:status=500;id=cap-500]'),
      chatLine('cap-ok', 'fine [sim:id=cap-ok]'),
    ]);
    expect(done.status).toBe('completed');
    expect(done.request_counts).toEqual({ total: 2, completed: 1, failed: 1 });
    expect(callsFor(t, 'cap-500')).toHaveLength(3);
    expect(callsFor(t, 'cap-500').every((c) => c.status === 500)).toBe(true);
    expect(callsFor(t, 'cap-ok')).toHaveLength(1);
    const errors = await readLines(t.client, done.error_file_id);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({
      custom_id: 'cap-500',
      error: null,
      response: { status_code: 500, body: { error: { type: 'server_error' } } },
    });
  });

  it('sends a 400 exactly once', async () => {
    const done = await runBatch(t, [chatLine('once-400', 'bad [sim:status=400;id=once-400]')]);
    expect(done.request_counts).toEqual({ total: 1, completed: 0, failed: 1 });
    expect(callsFor(t, 'once-400')).toHaveLength(1);
    const errors = await readLines(t.client, done.error_file_id);
    expect(errors[0]).toMatchObject({
      custom_id: 'once-400',
      error: null,
      response: { status_code: 400 },
    });
  });

  it('retries a connection reset and then succeeds', async () => {
    const done = await runBatch(t, [
      chatLine('rst-1', 'flaky socket [sim:reset;times=1;id=rst-1]'),
    ]);
    expect(done.status).toBe('completed');
    expect(done.request_counts).toEqual({ total: 1, completed: 1, failed: 0 });
    const calls = callsFor(t, 'rst-1');
    expect(calls.map((c) => c.fault)).toEqual(['reset', null]);
    expect(calls.map((c) => c.status)).toEqual([0, 200]);
    const output = await readLines(t.client, done.output_file_id);
    expect(output[0]).toMatchObject({
      custom_id: 'rst-1',
      error: null,
      response: { status_code: 200 },
    });
  });

  it('retries a 200 with an invalid JSON body and then succeeds', async () => {
    const done = await runBatch(t, [chatLine('mal-1', 'garbled [sim:malformed;times=1;id=mal-1]')]);
    expect(done.status).toBe('completed');
    expect(done.request_counts).toEqual({ total: 1, completed: 1, failed: 0 });
    const calls = callsFor(t, 'mal-1');
    expect(calls.map((c) => c.fault)).toEqual(['malformed', null]);
    const output = await readLines(t.client, done.output_file_id);
    expect(output).toHaveLength(1);
    expect(output[0]!.response.status_code).toBe(200);
    expect(output[0]!.response.body.object).toBe('chat.completion');
    expect(done.error_file_id).toBeNull();
  });

  it('recovers from a transient 500 within the attempt budget', async () => {
    const done = await runBatch(t, [
      chatLine('tr-500', 'twice then fine [sim:status=500x2;id=tr-500]'),
    ]);
    expect(done.request_counts).toEqual({ total: 1, completed: 1, failed: 0 });
    expect(callsFor(t, 'tr-500').map((c) => c.status)).toEqual([500, 500, 200]);
  });
});

describe('429 refunds and request timeouts (max attempts 2, timeout 500 ms)', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({
      env: { OPENBATCH_MAX_ATTEMPTS: '2', OPENBATCH_REQUEST_TIMEOUT_MS: '500' },
    });
  });
  afterAll(async () => t.close());

  it('retries a 429 past max attempts (a 429 does not use one up) and ends in the output', async () => {
    const done = await runBatch(t, [chatLine('rl-1', 'slow down [sim:status=429x3;id=rl-1]')]);
    expect(done.status).toBe('completed');
    expect(done.request_counts).toEqual({ total: 1, completed: 1, failed: 0 });
    expect(callsFor(t, 'rl-1').map((c) => c.status)).toEqual([429, 429, 429, 200]);
    const output = await readLines(t.client, done.output_file_id);
    expect(output[0]).toMatchObject({
      custom_id: 'rl-1',
      error: null,
      response: { status_code: 200 },
    });
    expect(done.error_file_id).toBeNull();
  });

  it('gives up on a hanging upstream with an upstream_error line counted as failed', async () => {
    const done = await runBatch(t, [
      chatLine('hang-1', 'never answers [sim:hang;id=hang-1]'),
      chatLine('hang-ok', 'fine [sim:id=hang-ok]'),
    ]);
    expect(done.status).toBe('completed');
    expect(done.request_counts).toEqual({ total: 2, completed: 1, failed: 1 });
    expect(callsFor(t, 'hang-1')).toHaveLength(2);
    const errors = await readLines(t.client, done.error_file_id);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({
      custom_id: 'hang-1',
      response: null,
      error: { code: 'upstream_error', message: expect.any(String) },
    });
    expect(errors[0]!.error.message.length).toBeGreaterThan(0);
    const output = await readLines(t.client, done.output_file_id);
    expect(output.map((l) => l.custom_id as string)).toEqual(['hang-ok']);
  });
});
