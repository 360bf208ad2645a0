import { readFile, readdir } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { Hono } from 'hono';
import type { ApiDeps, ApiEnv } from '../api-deps.ts';
import { authMiddleware } from '../auth.ts';
import { notFoundResponse } from '../error-response.ts';
import { dashboardApiRoutes } from './dashboard-api.ts';

/**
 * The dashboard's files: plain HTML, ES modules and CSS in the package's `dashboard/` folder,
 * served as they are (no build step, no CDN). Three folders up from both src/api/routes/ and
 * dist/api/routes/.
 */
const STATIC_DIR = join(import.meta.dirname, '..', '..', '..', 'dashboard');

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/** Everything the page loads comes from this server; nothing runs inline. */
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

/**
 * GET / redirects to /dashboard; /dashboard serves the page, /dashboard/static/* its files (only
 * names present in the folder, so no path reaches outside it), /dashboard/api/* its data behind
 * the same auth as /v1. The page itself holds no data, so it needs no key to load.
 */
export function dashboardRoutes(deps: ApiDeps): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  const names = readdir(STATIC_DIR).then(
    (entries) => new Set(entries.filter((n) => extname(n) in CONTENT_TYPES)),
    () => new Set<string>(),
  );
  const sendFile = async (name: string): Promise<Response | null> => {
    if (!(await names).has(name)) return null;
    const type = CONTENT_TYPES[extname(name)] ?? 'application/octet-stream';
    return new Response(await readFile(join(STATIC_DIR, name)), {
      headers: {
        'content-type': type,
        'cache-control': 'no-cache',
        'content-security-policy': CSP,
        'x-content-type-options': 'nosniff',
      },
    });
  };
  app.get('/', (c) => c.redirect('/dashboard', 302));
  app.get('/dashboard', async (c) => (await sendFile('index.html')) ?? notFoundResponse(c));
  app.get('/dashboard/', (c) => c.redirect('/dashboard', 301));
  app.get(
    '/dashboard/static/:name',
    async (c) => (await sendFile(c.req.param('name'))) ?? notFoundResponse(c),
  );
  app.use('/dashboard/api/*', authMiddleware(deps));
  app.route('/dashboard/api', dashboardApiRoutes(deps));
  return app;
}
