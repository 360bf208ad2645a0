import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { createSimulator } from '../../src/simulator/simulator.ts';
import { chatBody, postJson, waitUntil, withSim } from './sim-helpers.ts';

const ask = (content: string) => ({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user' as const, content }],
});

describe('simulator directives', () => {
  it('status=400 makes the SDK throw BadRequestError', async () => {
    await withSim({}, async ({ client }) => {
      const call = client.chat.completions.create(ask('bad [sim:status=400]'));
      await expect(call).rejects.toBeInstanceOf(OpenAI.BadRequestError);
      await expect(call).rejects.toMatchObject({
        status: 400,
        type: 'invalid_request_error',
        message: expect.stringContaining('Simulated bad request'),
      });
    });
  });

  it('status=429 carries retry-after-ms and retry-after', async () => {
    await withSim({ retryAfterMs: 1500 }, async ({ url }) => {
      const res = await postJson(
        url,
        '/v1/chat/completions',
        chatBody('slow down [sim:status=429]'),
      );
      expect(res.status).toBe(429);
      expect(res.headers.get('retry-after-ms')).toBe('1500');
      expect(res.headers.get('retry-after')).toBe('2');
      expect(await res.json()).toMatchObject({
        error: { type: 'requests', code: 'rate_limit_exceeded' },
      });
    });
  });

  it('status=500x2 fails twice for the same body, then succeeds', async () => {
    await withSim({}, async ({ client, sim }) => {
      const params = ask('flaky [sim:status=500x2;id=line-3]');
      await expect(client.chat.completions.create(params)).rejects.toBeInstanceOf(
        OpenAI.InternalServerError,
      );
      await expect(client.chat.completions.create(params)).rejects.toBeInstanceOf(
        OpenAI.InternalServerError,
      );
      const ok = await client.chat.completions.create(params);
      expect(ok.choices[0]?.message.content).toMatch(/^Simulated reply/);
      expect(sim.calls().map((c) => [c.status, c.fault, c.marker])).toEqual([
        [500, 'status', 'status=500x2;id=line-3'],
        [500, 'status', 'status=500x2;id=line-3'],
        [200, null, 'status=500x2;id=line-3'],
      ]);
    });
  });

  it('reset makes the client see a connection error', async () => {
    await withSim({}, async ({ client, sim }) => {
      await expect(client.chat.completions.create(ask('drop [sim:reset]'))).rejects.toBeInstanceOf(
        OpenAI.APIConnectionError,
      );
      expect(sim.calls()[0]).toMatchObject({ status: 0, fault: 'reset', marker: 'reset' });
    });
  });

  it('reset-mid-body and malformed break the body after a 200', async () => {
    await withSim({}, async ({ url }) => {
      const mid = await postJson(url, '/v1/chat/completions', chatBody('cut [sim:reset-mid-body]'));
      expect(mid.status).toBe(200);
      await expect(mid.text()).rejects.toThrow();
      const bad = await postJson(url, '/v1/chat/completions', chatBody('garble [sim:malformed]'));
      expect(bad.headers.get('content-type')).toBe('application/json');
      await expect(bad.json()).rejects.toThrow();
    });
  });

  it('trickle delivers a complete body slowly', async () => {
    await withSim({}, async ({ client, sim }) => {
      const completion = await client.chat.completions.create(ask('drip [sim:trickle=2]'));
      expect(completion.object).toBe('chat.completion');
      expect(sim.calls()[0]?.fault).toBe('trickle');
    });
  });

  it('records markers, statuses and body hashes in the call log and the JSONL file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sim-log-'));
    try {
      const logFile = join(dir, 'calls.jsonl');
      const sim = createSimulator({ logFile });
      const { url } = await sim.listen();
      await postJson(url, '/v1/chat/completions', chatBody('tagged [sim:id=line-17]'));
      await postJson(url, '/v1/embeddings', { model: 'e', input: 'oops [sim:status=503]' });
      await sim.close();
      const calls = sim.calls();
      expect(calls.map((c) => [c.seq, c.path, c.model, c.status, c.marker, c.fault])).toEqual([
        [1, '/v1/chat/completions', 'gpt-4o-mini', 200, 'id=line-17', null],
        [2, '/v1/embeddings', 'e', 503, 'status=503', 'status'],
      ]);
      expect(calls[0]?.bodySha256).toMatch(/^[0-9a-f]{64}$/);
      const lines = (await readFile(logFile, 'utf8'))
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as unknown);
      expect(lines).toEqual(calls);
      sim.reset();
      expect(sim.calls()).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('injects random faults from failRate with the seeded PRNG', async () => {
    await withSim({ failRate: 1, failStatuses: [503] }, async ({ url, sim }) => {
      const res = await postJson(url, '/v1/chat/completions', chatBody('unlucky'));
      expect(res.status).toBe(503);
      expect(sim.calls()[0]).toMatchObject({ status: 503, fault: 'status' });
    });
  });
});

describe('simulator capacity mode and shutdown', () => {
  it('answers 503 when every slot is busy and the queue is full', async () => {
    await withSim({ capacity: { slots: 1, queue: 1 } }, async ({ url, sim }) => {
      const held = postJson(url, '/v1/chat/completions', chatBody('held [sim:latency=300]'));
      await waitUntil(() => sim.calls().length === 1);
      // One of these queues behind the held request, the other finds the queue full.
      const [b, c] = await Promise.all([
        postJson(url, '/v1/chat/completions', chatBody('b [sim:latency=10]')),
        postJson(url, '/v1/chat/completions', chatBody('c [sim:latency=10]')),
      ]);
      expect([b.status, c.status].sort()).toEqual([200, 503]);
      const refused = b.status === 503 ? b : c;
      expect(refused.headers.get('x-ratelimit-limit-requests')).toBeNull();
      expect(await refused.json()).toMatchObject({
        error: { message: 'Server overloaded', type: 'server_error' },
      });
      expect((await held).status).toBe(200);
      expect(sim.calls().filter((call) => call.fault === 'overloaded')).toHaveLength(1);
    });
  });

  it('close() returns promptly with a hung request and a queued one', async () => {
    const sim = createSimulator({ capacity: { slots: 1, queue: 4 } });
    const { url } = await sim.listen();
    const hung = postJson(url, '/v1/chat/completions', chatBody('[sim:hang]')).then(
      () => 'answered',
      () => 'failed',
    );
    await waitUntil(() => sim.calls().length === 1);
    const queued = postJson(url, '/v1/chat/completions', chatBody('waiting')).then(
      () => 'answered',
      () => 'failed',
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    const startedMs = Date.now();
    await sim.close();
    expect(Date.now() - startedMs).toBeLessThan(1_000);
    expect(await hung).toBe('failed');
    expect(await queued).toBe('failed');
    expect(sim.calls()[0]).toMatchObject({ status: 0, fault: 'hang' });
  });
});
