import { Hono } from 'hono';
import { truncateEcho } from '../domain/echo-limits.ts';
import type { Logger } from '../lib/logger.ts';
import { newRequestId } from '../domain/ids.ts';
import type { ApiDeps, ApiEnv } from './api-deps.ts';
import { authMiddleware } from './auth.ts';
import { openModeGuard } from './open-mode-guard.ts';
import { adminRoutes } from './routes/admin.ts';
import { errorResponse, notFoundResponse } from './error-response.ts';
import { batchesRoutes } from './routes/batches.ts';
import { filesRoutes } from './routes/files.ts';
import { fileEstimateRoutes } from './routes/file-estimate.ts';
import { dashboardRoutes } from './routes/dashboard.ts';
import { healthRoutes } from './routes/health.ts';
import { metricsRoutes } from './routes/metrics.ts';
import { passthroughRoutes } from './routes/passthrough.ts';
import { webhookEndpointsRoutes } from './routes/webhook-endpoints.ts';

/**
 * One line per request (time to the answer's headers for streamed answers): who (project, never
 * the key), what, and how it ended, so refused and unauthenticated calls are seen too.
 */
function accessLog(
  logger: Logger,
  entry: {
    method: string;
    path: string;
    status: number;
    project: string | undefined;
    requestId: string;
  },
  durationMs: number,
): void {
  const { method, status } = entry;
  const path = truncateEcho(entry.path, 256);
  logger.info(
    {
      method,
      path,
      status,
      project: entry.project ?? null,
      durationMs,
      request_id: entry.requestId,
    },
    'request',
  );
}

/** The HTTP application: OpenAI's /v1 surface. Listening is the caller's business. */
export function createApp(deps: ApiDeps): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  app.use('*', async (c, next) => {
    const requestId = newRequestId();
    c.set('requestId', requestId);
    const startedMs = deps.clock.nowMs();
    await next();
    // Set after the handler so raw Responses (downloads, passthrough) carry them too; an
    // upstream's own x-request-id is kept. nosniff: an upstream's error body or a downloaded
    // file is never rendered as HTML by a browser.
    if (!c.res.headers.has('x-request-id')) c.res.headers.set('x-request-id', requestId);
    c.res.headers.set('openai-version', '2020-10-01');
    c.res.headers.set('x-content-type-options', 'nosniff');
    const { method, path } = c.req;
    const entry = { method, path, status: c.res.status, project: c.get('project'), requestId };
    accessLog(deps.logger, entry, deps.clock.nowMs() - startedMs);
  });
  const guard = openModeGuard(deps, deps.openMode);
  app.route('/', healthRoutes(deps));
  // Dashboard data and metrics: the same browser guard as /v1 in open mode.
  app.use('/metrics', guard);
  app.use('/dashboard/api/*', guard);
  app.route('/', metricsRoutes(deps));
  app.route('/', dashboardRoutes(deps));
  app.use('/v1/*', guard, authMiddleware(deps));
  app.use('/admin/*', guard, authMiddleware(deps));
  app.route('/admin', adminRoutes(deps));
  app.route('/v1/files', fileEstimateRoutes(deps));
  app.route('/v1/files', filesRoutes(deps));
  app.route('/v1/batches', batchesRoutes(deps));
  app.route('/v1/webhook_endpoints', webhookEndpointsRoutes(deps));
  app.route('/v1', passthroughRoutes(deps));
  app.notFound((c) => notFoundResponse(c));
  app.onError((err, c) => errorResponse(c, err, deps.logger));
  return app;
}
