import { Hono } from 'hono';
import { newRequestId } from '../domain/ids.ts';
import type { ApiDeps, ApiEnv } from './api-deps.ts';
import { authMiddleware } from './auth.ts';
import { adminRoutes } from './routes/admin.ts';
import { errorResponse, notFoundResponse } from './error-response.ts';
import { batchesRoutes } from './routes/batches.ts';
import { filesRoutes } from './routes/files.ts';
import { dashboardRoutes } from './routes/dashboard.ts';
import { healthRoutes } from './routes/health.ts';
import { metricsRoutes } from './routes/metrics.ts';
import { passthroughRoutes } from './routes/passthrough.ts';

/** The HTTP application: OpenAI's /v1 surface. Listening is the caller's business. */
export function createApp(deps: ApiDeps): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  app.use('*', async (c, next) => {
    const requestId = newRequestId();
    c.set('requestId', requestId);
    await next();
    // Set after the handler so raw Responses (downloads, passthrough) carry them too; an
    // upstream's own x-request-id is kept.
    if (!c.res.headers.has('x-request-id')) c.res.headers.set('x-request-id', requestId);
    c.res.headers.set('openai-version', '2020-10-01');
  });
  app.route('/', healthRoutes(deps));
  app.route('/', metricsRoutes(deps));
  app.route('/', dashboardRoutes(deps));
  app.use('/v1/*', authMiddleware(deps));
  app.use('/admin/*', authMiddleware(deps));
  app.route('/admin', adminRoutes(deps));
  app.route('/v1/files', filesRoutes(deps));
  app.route('/v1/batches', batchesRoutes(deps));
  app.route('/v1', passthroughRoutes(deps));
  app.notFound((c) => notFoundResponse(c));
  app.onError((err, c) => errorResponse(c, err, deps.logger));
  return app;
}
