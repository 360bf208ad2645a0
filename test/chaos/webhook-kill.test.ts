import { createReadStream } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { createSimulator, type Simulator } from '../../src/simulator/simulator.ts';
import { chatLine, writeJsonl } from '../helpers/test-server.ts';
import { eventually, startReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.ts';
import {
  clientFor,
  FAST_ENGINE_ENV,
  killHard,
  removeDir,
  Servers,
  tempDir,
} from './harness/chaos-env.ts';

const SECRET = `whsec_${Buffer.from('chaos-webhook-secret-32-bytes!!!').toString('base64')}`;

describe('webhooks survive kill -9', () => {
  const servers = new Servers();
  const dataDir = tempDir('webhook');
  let sim: Simulator | undefined;
  let receiver: WebhookReceiver | undefined;
  afterAll(async () => {
    await servers.killAll();
    await receiver?.close();
    await sim?.close();
    removeDir(dataDir);
  });

  it('a batch.completed written but not yet delivered when the server dies is delivered after restart', async () => {
    sim = createSimulator({ latencyMs: 5 });
    const simUrl = (await sim.listen(0)).url;
    // The first attempt never gets an answer: the server is killed while it is in flight, after
    // the status change (and its outbox row) committed and before any delivery was recorded.
    receiver = await startReceiver((_req, n) => (n === 0 ? 'hang' : { status: 200 }));
    const env = {
      ...FAST_ENGINE_ENV,
      OPENBATCH_UPSTREAM_URL: `${simUrl}/v1`,
      OPENBATCH_API_KEYS: 'chaos-key-0123456789:chaos',
      OPENBATCH_WEBHOOK_URL: receiver.url,
      OPENBATCH_WEBHOOK_SECRET: SECRET,
      OPENBATCH_WEBHOOK_ALLOW_PRIVATE: '1',
      OPENBATCH_WEBHOOK_TIMEOUT_MS: '600000',
    };
    const first = await servers.spawn(dataDir, env);
    const client = clientFor(first.baseURL);
    const file = await client.files.create({
      file: createReadStream(writeJsonl([chatLine('a', 'hi'), chatLine('b', 'there')])),
      purpose: 'batch',
    });
    const batch = await client.batches.create({
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    await eventually(() => receiver!.received.length === 1, 30_000, 'the first attempt');
    await killHard(first);

    const second = await servers.spawn(dataDir, env);
    await eventually(() => receiver!.received.length >= 2, 30_000, 'delivery after restart');
    const [lost, delivered] = receiver.received;
    expect(delivered!.headers['webhook-id']).toBe(lost!.headers['webhook-id']);
    expect(delivered!.body).toBe(lost!.body);
    const after = clientFor(second.baseURL);
    const event = await after.webhooks.unwrap(delivered!.body, delivered!.headers, SECRET);
    expect(event).toMatchObject({ type: 'batch.completed', data: { id: batch.id } });
    expect((await after.batches.retrieve(batch.id)).status).toBe('completed');
    const list = () =>
      after.get<{ data: Record<string, unknown>[] }>('/webhook_endpoints/env/deliveries');
    let rows = await list();
    for (let i = 0; i < 100 && rows.data[0]?.status !== 'delivered'; i++) {
      await new Promise((r) => setTimeout(r, 50)); // the outcome is recorded just after the 200
      rows = await list();
    }
    expect(rows.data).toEqual([
      expect.objectContaining({ event_id: event.id, status: 'delivered', attempts: 1 }),
    ]);
  }, 120_000);
});
