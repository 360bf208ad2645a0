import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSimulator, type Simulator } from '../../src/simulator/simulator.ts';
import type { ServerProcess } from '../helpers/server-process.ts';
import {
  FAST_ENGINE_ENV,
  Servers,
  clientFor,
  removeDir,
  sleep,
  tempDir,
} from './harness/chaos-env.ts';
import {
  normalTraffic,
  slowHeaders,
  trickleUpload,
  type SlowSocket,
} from './harness/slow-clients.ts';

/**
 * Slow clients (A8 #22), fast variant: 50 slowloris sockets and one trickling upload must not
 * keep a normal client from working. Whether and when the server cuts them off is measured and
 * printed here; slow-clients.full.test.ts waits for the cut-offs themselves.
 */
describe('slow clients (fast)', () => {
  const servers = new Servers();
  let sim: Simulator;
  let proc: ServerProcess;
  const dataDir = tempDir('slow');
  const slow: SlowSocket[] = [];
  let simUrl = '';
  const alive = () => proc.child.exitCode === null && proc.child.signalCode === null;
  beforeAll(async () => {
    sim = createSimulator({ latencyMs: 10 });
    simUrl = (await sim.listen(0)).url;
    proc = await servers.spawn(dataDir, {
      ...FAST_ENGINE_ENV,
      OPENBATCH_UPSTREAM_URL: `${simUrl}/v1`,
    });
  });
  afterAll(async () => {
    for (const s of slow) s.stop();
    await servers.killAll();
    await sim.close();
    removeDir(dataDir);
  });

  it('keeps serving other clients while 50 sockets trickle headers and one trickles an upload', async () => {
    const port = Number(new URL(proc.baseURL).port);
    for (let i = 0; i < 50; i++) slow.push(slowHeaders(port, 1_000));
    const upload = trickleUpload(port, 1_024, 1_000);
    slow.push(upload);
    await sleep(2_000);
    const traffic = await normalTraffic(clientFor(proc.baseURL, 'k', 20_000));
    await sleep(6_000);
    const headerSockets = slow.filter((s) => s !== upload);
    const closed = headerSockets.filter((s) => s.closedAfterMs !== null).length;
    const report =
      `[slow-clients] normal client: ${traffic.steps.join(', ')}; after ~10 s: ` +
      `${closed}/${headerSockets.length} slow-header sockets closed by the server, trickling upload ` +
      `${upload.closedAfterMs === null ? 'still open' : `closed after ${upload.closedAfterMs} ms (${upload.answer.split('\r\n')[0]})`}; ` +
      `server alive=${String(proc.child.exitCode === null)}`;
    console.log(report);
    expect(proc.child.exitCode, report).toBeNull();
    expect(traffic.steps.length, report).toBe(9);
  }, 60_000);

  it('survives a client that hangs up in the middle of an upload', async () => {
    // What the server's own 408 cut-off of a trickling upload does too (see the full variant).
    if (!alive())
      proc = await servers.spawn(dataDir, {
        ...FAST_ENGINE_ENV,
        OPENBATCH_UPSTREAM_URL: `${simUrl}/v1`,
      });
    const port = Number(new URL(proc.baseURL).port);
    const upload = trickleUpload(port, 16 * 1024, 50);
    await sleep(500);
    upload.stop();
    await sleep(1_000);
    const why = `[slow-clients] upload aborted by the client after ~500 ms: server alive=${String(alive())}\n${proc.output().slice(-1200)}`;
    console.log(why);
    expect(alive(), why).toBe(true);
    expect(Array.isArray((await clientFor(proc.baseURL).batches.list()).data), why).toBe(true);
  }, 30_000);
});
