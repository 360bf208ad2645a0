import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSimulator, type Simulator } from '../../src/simulator/simulator.ts';
import type { ServerProcess } from '../helpers/server-process.ts';
import {
  FAST_ENGINE_ENV,
  Servers,
  clientFor,
  removeDir,
  tempDir,
  waitUntil,
} from './harness/chaos-env.ts';
import {
  normalTraffic,
  slowHeaders,
  trickleUpload,
  type SlowSocket,
} from './harness/slow-clients.ts';

/**
 * Slow clients, full variant: waits for the server to cut off slow headers and a trickling upload
 * (each bounded at 150 s), with a normal client working in between, and the server must survive
 * the cut. serve.ts sets headersTimeout 30 s and requestTimeout OPENBATCH_HTTP_REQUEST_TIMEOUT_MS
 * (60 s here); Node enforces both only on its connectionsCheckingInterval sweep (30 s).
 */
describe('slow clients (full): cut off by server timeouts', () => {
  const servers = new Servers();
  let sim: Simulator;
  let proc: ServerProcess;
  const dataDir = tempDir('slow-full');
  const slow: SlowSocket[] = [];
  beforeAll(async () => {
    sim = createSimulator({ latencyMs: 10 });
    const simUrl = (await sim.listen(0)).url;
    proc = await servers.spawn(dataDir, {
      ...FAST_ENGINE_ENV,
      OPENBATCH_UPSTREAM_URL: `${simUrl}/v1`,
      // The whole-request limit (default 600 s) made short enough to watch it cut an upload.
      OPENBATCH_HTTP_REQUEST_TIMEOUT_MS: '60000',
    });
  });
  afterAll(async () => {
    for (const s of slow) s.stop();
    await servers.killAll();
    await sim.close();
    removeDir(dataDir);
  });

  it('closes slowloris sockets and a trickling upload, and other clients never notice', async () => {
    const port = Number(new URL(proc.baseURL).port);
    const headers = Array.from({ length: 20 }, () => slowHeaders(port, 1_000));
    const upload = trickleUpload(port, 1_024, 1_000);
    slow.push(...headers, upload);
    const traffic = await normalTraffic(clientFor(proc.baseURL, 'k', 20_000));
    const cut = (s: SlowSocket) => s.closedAfterMs !== null;
    await waitUntil(() => headers.every(cut), 150_000, 'slow-header sockets to be cut', 500).catch(
      () => undefined,
    );
    const traffic2 = await normalTraffic(clientFor(proc.baseURL, 'k', 20_000));
    await waitUntil(() => cut(upload), 150_000, 'the trickling upload to be cut', 1_000).catch(
      () => undefined,
    );
    const times = headers.map((s) => s.closedAfterMs ?? -1);
    const report =
      `[slow-clients full] slow headers cut after ${Math.min(...times)}–${Math.max(...times)} ms ` +
      `(${times.filter((t) => t >= 0).length}/${headers.length}; answer: ${JSON.stringify(headers[0]?.answer.split('\r\n')[0] ?? '')}); ` +
      `trickling upload cut after ${String(upload.closedAfterMs)} ms (answer ${JSON.stringify(upload.answer.split('\r\n')[0] ?? '')}); ` +
      `normal client: ${traffic.steps.join(', ')} | later: ${traffic2.steps.join(', ')}; ` +
      `server exit=${String(proc.child.exitCode)}\n${proc.output().slice(-1200)}`;
    console.log(report);
    expect(headers.every(cut), report).toBe(true);
    // headersTimeout 30 s, checked every 5 s (connectionsCheckingInterval; Node's default of 30 s
    // let sockets live up to 60 s).
    expect(Math.max(...times), report).toBeLessThan(30_000 + 5_000 + 5_000);
    expect(cut(upload), report).toBe(true);
    expect(proc.child.exitCode, report).toBeNull();
  }, 700_000);
});
