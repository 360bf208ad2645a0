import { Hono } from 'hono';
import { coerceError } from '../../lib/coerce-error.ts';
import type { ApiDeps, ApiEnv } from '../api-deps.ts';

/**
 * A supervisor pass that has not finished for this long means the engine is wedged (a pass takes
 * milliseconds; finalizing publishes by hard link), so the process should stop taking traffic.
 */
const STALE_TICK_MS = 60_000;

/**
 * Probes, without auth (they reveal nothing about any project): GET /healthz answers 200 while the
 * process serves HTTP; GET /readyz answers 200 when the store answers a query and the engine is
 * running (started, not stopping, its supervisor passing), else 503 with the failing checks.
 * GET /health is the older name of /healthz.
 */
export function healthRoutes(deps: ApiDeps): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  const alive = () => ({ status: 'ok' as const });
  app.get('/health', (c) => c.json(alive()));
  app.get('/healthz', (c) => c.json(alive()));
  app.get('/readyz', async (c) => {
    const checks = { store: await storeCheck(deps), engine: engineCheck(deps) };
    const ready = checks.store === 'ok' && checks.engine === 'running';
    return c.json({ status: ready ? 'ready' : 'unavailable', checks }, ready ? 200 : 503);
  });
  return app;
}

async function storeCheck(deps: ApiDeps): Promise<string> {
  try {
    await deps.store.ping();
    return 'ok';
  } catch (err) {
    return `unreachable: ${coerceError(err).message}`;
  }
}

function engineCheck(deps: ApiDeps): string {
  const { running, lastTickMs } = deps.engine.readiness();
  if (!running) return 'stopped';
  if (lastTickMs !== null && deps.clock.nowMs() - lastTickMs > STALE_TICK_MS)
    return `stalled: no supervisor pass for ${Math.round((deps.clock.nowMs() - lastTickMs) / 1000)} s`;
  return 'running';
}
