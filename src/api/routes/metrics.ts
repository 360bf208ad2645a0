import { Hono } from 'hono';
import type { ApiDeps, ApiEnv } from '../api-deps.ts';
import { authMiddleware, requireAdmin } from '../auth.ts';

/**
 * GET /metrics: Prometheus text format. Server-wide figures (every project's batches, every
 * upstream), so with keys it needs an admin key; in open mode (loopback) it is open.
 */
export function metricsRoutes(deps: ApiDeps): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  app.get('/metrics', authMiddleware(deps), requireAdmin, async (c) =>
    c.body(await deps.metrics.render(), 200, { 'content-type': deps.metrics.contentType }),
  );
  return app;
}
