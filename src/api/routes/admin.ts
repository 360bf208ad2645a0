import { Hono } from 'hono';
import type { ApiDeps, ApiEnv } from '../api-deps.ts';

/**
 * GET /admin/scheduler: each upstream's limiter state (limits and their source, what is
 * available now, cooldown, concurrency limit, in flight) and the caller's running batches with
 * their current throughput. Batches are scoped to the caller's project like every other route.
 * Limiter keys are model names and the counters sum every project's traffic, so only an admin
 * key (or open mode, where the one caller is the operator) sees them; another key sees each
 * upstream's name and concurrency limit, and its own batches.
 */
export function adminRoutes(deps: ApiDeps): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  app.get('/scheduler', async (c) => {
    const project = c.get('project');
    const active = await deps.store.batchesWithStatus(['in_progress', 'cancelling', 'finalizing']);
    const batches = active
      .filter((b) => b.project === project)
      .map((b) => ({
        id: b.id,
        status: b.status,
        expires_at: Math.floor(b.expires_at_ms / 1000),
        request_counts: { total: b.total, completed: b.completed, failed: b.failed },
        lines_per_second: deps.engine.batchThroughput(b.id),
      }));
    const status = deps.engine.upstreamStatus();
    const upstreams =
      c.get('role') === 'admin'
        ? status
        : status.map((u) => ({ upstream: u.upstream, concurrencyLimit: u.concurrencyLimit }));
    return c.json({ upstreams, batches });
  });
  return app;
}
