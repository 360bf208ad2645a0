import { afterEach, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

let server: TestServer | null = null;
afterEach(async () => {
  await server?.close();
  server = null;
});

const origin = (s: TestServer): string => s.baseURL.replace(/\/v1$/, '');

describe('health probes', () => {
  it('/healthz and /readyz answer 200 without a key while the engine runs', async () => {
    server = await startTestServer({ env: { OPENBATCH_API_KEYS: 'secret-key-0123456789:team' } });
    const healthz = await fetch(`${origin(server)}/healthz`);
    expect(healthz.status).toBe(200);
    expect(await healthz.json()).toEqual({ status: 'ok' });
    const readyz = await fetch(`${origin(server)}/readyz`);
    expect(readyz.status).toBe(200);
    expect(await readyz.json()).toEqual({
      status: 'ready',
      checks: { store: 'ok', engine: 'running' },
    });
  });

  it('/readyz answers 503 once the engine stops, while /healthz stays 200', async () => {
    server = await startTestServer();
    await server.runtime.engine.stop();
    const readyz = await fetch(`${origin(server)}/readyz`);
    expect(readyz.status).toBe(503);
    expect(await readyz.json()).toMatchObject({
      status: 'unavailable',
      checks: { store: 'ok', engine: 'stopped' },
    });
    expect((await fetch(`${origin(server)}/healthz`)).status).toBe(200);
  });

  it('/readyz answers 503 naming the store when the database cannot be read', async () => {
    server = await startTestServer();
    const { store } = server.runtime;
    const ping = store.ping;
    store.ping = async () => {
      throw new Error('disk I/O error');
    };
    try {
      const readyz = await fetch(`${origin(server)}/readyz`);
      expect(readyz.status).toBe(503);
      expect(await readyz.json()).toMatchObject({
        checks: { store: 'unreachable: disk I/O error', engine: 'running' },
      });
    } finally {
      store.ping = ping;
    }
  });
});
