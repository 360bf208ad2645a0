import { createReadStream } from 'node:fs';
import { APIError, type OpenAI } from 'openai';
import { afterAll, describe, expect, it } from 'vitest';
import { chatLine, startTestServer, waitForBatch, writeJsonl } from '../helpers/test-server.ts';
import { eventually, startReceiver } from '../helpers/webhook-receiver.ts';

interface EndpointCreated {
  id: string;
  url: string;
  events: string[];
  secret: string;
}

const FAST_WEBHOOKS = {
  OPENBATCH_WEBHOOK_RETRY_INITIAL_MS: '100',
  OPENBATCH_WEBHOOK_RETRY_MAX_MS: '400',
};

async function runBatch(client: OpenAI, lines: object[]) {
  const file = await client.files.create({
    file: createReadStream(writeJsonl(lines)),
    purpose: 'batch',
  });
  const batch = await client.batches.create({
    input_file_id: file.id,
    endpoint: '/v1/chat/completions',
    completion_window: '24h',
  });
  return waitForBatch(client, batch.id);
}

const createEndpoint = (client: OpenAI, body: object) =>
  client.post<EndpointCreated>('/webhook_endpoints', { body });
const deliveries = (client: OpenAI, id: string) =>
  client.get<{ data: Record<string, any>[] }>(`/webhook_endpoints/${id}/deliveries`);

describe('webhooks', () => {
  const open: { close(): Promise<void> }[] = [];
  afterAll(async () => {
    for (const x of open.reverse()) await x.close();
  });

  it('a receiver that fails twice (a redirect, a 500) still gets batch.completed, signed', async () => {
    const receiver = await startReceiver((_req, n) =>
      n === 0
        ? { status: 302, headers: { location: '/elsewhere' } }
        : n === 1
          ? { status: 500 }
          : { status: 200 },
    );
    open.push(receiver);
    const t = await startTestServer({
      env: { ...FAST_WEBHOOKS, OPENBATCH_WEBHOOK_ALLOW_PRIVATE: '1' },
    });
    open.push(t);
    const endpoint = await createEndpoint(t.client, { url: receiver.url });
    expect(endpoint.secret).toMatch(/^whsec_/);
    expect(endpoint.events).toEqual([
      'batch.completed',
      'batch.failed',
      'batch.expired',
      'batch.cancelled',
    ]);
    const listed = await t.client.get<{ data: Record<string, unknown>[] }>('/webhook_endpoints');
    expect(listed.data.map((e) => e.id)).toEqual([endpoint.id]);
    expect(listed.data[0]).not.toHaveProperty('secret');

    const batch = await runBatch(t.client, [chatLine('a', 'hi')]);
    expect(batch.status).toBe('completed');
    await eventually(() => receiver.received.length >= 3, 20_000, 'three attempts');
    const attempts = receiver.received.slice(0, 3);
    expect(attempts.every((r) => r.path === '/hook')).toBe(true); // the redirect was not followed
    expect(new Set(attempts.map((r) => r.headers['webhook-id'])).size).toBe(1);
    expect(new Set(attempts.map((r) => r.body)).size).toBe(1);

    const last = attempts[2]!;
    const event = await t.client.webhooks.unwrap(last.body, last.headers, endpoint.secret);
    expect(event).toMatchObject({
      object: 'event',
      type: 'batch.completed',
      data: { id: batch.id },
    });
    expect(event.id).toBe(last.headers['webhook-id']);
    expect(event.id).toMatch(/^evt_/);
    // The signature is real: another body or another secret does not verify.
    await expect(
      t.client.webhooks.unwrap(
        last.body.replace(batch.id, 'batch_x'),
        last.headers,
        endpoint.secret,
      ),
    ).rejects.toThrow();
    await expect(
      t.client.webhooks.unwrap(
        last.body,
        last.headers,
        `whsec_${Buffer.from('k'.repeat(32)).toString('base64')}`,
      ),
    ).rejects.toThrow();

    let list = await deliveries(t.client, endpoint.id);
    for (let i = 0; i < 200 && list.data[0]?.status !== 'delivered'; i++) {
      await new Promise((r) => setTimeout(r, 25)); // the third attempt's outcome is being recorded
      list = await deliveries(t.client, endpoint.id);
    }
    expect(list.data[0]).toMatchObject({
      event_id: event.id,
      type: 'batch.completed',
      batch_id: batch.id,
      status: 'delivered',
      attempts: 3,
      last_status_code: 200,
    });

    // A batch that fails validation sends batch.failed.
    const failed = await runBatch(t.client, [{ custom_id: 'x', method: 'POST' }]);
    expect(failed.status).toBe('failed');
    await eventually(() => receiver.received.length >= 4, 10_000, 'batch.failed');
    const failedEvent = await t.client.webhooks.unwrap(
      receiver.received[3]!.body,
      receiver.received[3]!.headers,
      endpoint.secret,
    );
    expect(failedEvent).toMatchObject({ type: 'batch.failed', data: { id: failed.id } });

    const deleted = await t.client.delete<{ deleted: boolean }>(
      `/webhook_endpoints/${endpoint.id}`,
    );
    expect(deleted.deleted).toBe(true);
    expect((await t.client.get<{ data: unknown[] }>('/webhook_endpoints')).data).toEqual([]);
  }, 60_000);

  it('refuses private and loopback targets without OPENBATCH_WEBHOOK_ALLOW_PRIVATE=1', async () => {
    const receiver = await startReceiver(() => ({ status: 200 }));
    open.push(receiver);
    const t = await startTestServer({
      env: {
        ...FAST_WEBHOOKS,
        OPENBATCH_WEBHOOK_URL: receiver.url,
        OPENBATCH_WEBHOOK_SECRET: `whsec_${Buffer.from('s'.repeat(32)).toString('base64')}`,
      },
    });
    open.push(t);
    for (const url of [
      receiver.url,
      'http://localhost:1/x',
      'http://10.1.2.3/x',
      'http://[::1]:9/x',
      'ftp://example.com/x',
    ]) {
      const err = await createEndpoint(t.client, { url }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err, url).toBeInstanceOf(APIError);
      expect((err as APIError).status, url).toBe(400);
    }
    const listed = await t.client.get<{ data: Record<string, unknown>[] }>('/webhook_endpoints');
    expect(listed.data).toEqual([expect.objectContaining({ id: 'env', url: receiver.url })]);
    // The environment's endpoint is loopback too: its deliveries are refused, never sent.
    const batch = await runBatch(t.client, [chatLine('a', 'hi')]);
    let rows: Record<string, any>[] = [];
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      rows = (await deliveries(t.client, 'env')).data;
      if (rows[0]?.status === 'failed') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(rows[0]).toMatchObject({ batch_id: batch.id, status: 'failed', attempts: 1 });
    expect(rows[0]!.last_error).toMatch(/refused/);
    expect(receiver.received).toHaveLength(0);
  }, 30_000);

  it('a receiver that never answers stalls neither the engine nor other receivers', async () => {
    const hanging = await startReceiver(() => 'hang');
    const fine = await startReceiver(() => ({ status: 204 }));
    open.push(hanging, fine);
    const t = await startTestServer({
      env: {
        ...FAST_WEBHOOKS,
        OPENBATCH_WEBHOOK_ALLOW_PRIVATE: '1',
        OPENBATCH_WEBHOOK_TIMEOUT_MS: '60000',
      },
    });
    open.push(t);
    await createEndpoint(t.client, { url: hanging.url });
    await createEndpoint(t.client, { url: fine.url, events: ['batch.completed'] });
    const first = await runBatch(t.client, [chatLine('a', 'hi')]);
    await eventually(
      () => hanging.received.length === 1,
      10_000,
      'the hanging receiver got the event',
    );
    const second = await runBatch(t.client, [chatLine('b', 'hi')]);
    expect(second.status).toBe('completed');
    await eventually(() => fine.received.length === 2, 10_000, 'both events at the other receiver');
    const ids = fine.received.map((r) => JSON.parse(r.body).data.id);
    expect(ids.sort()).toEqual([first.id, second.id].sort());
    expect(hanging.received.length).toBe(2); // the second event went out while the first still hangs
  }, 60_000);
});
