import type { MiddlewareHandler } from 'hono';
import { AppError } from '../domain/app-error.ts';
import { truncateEcho } from '../domain/echo-limits.ts';
import type { ApiDeps, ApiEnv } from './api-deps.ts';

/** Which browsers and names may talk to a server without keys. */
export interface OpenModePolicy {
  /** Origins (`http://localhost:3000`) allowed besides the server's own. */
  allowedOrigins: readonly string[];
  /** Host names allowed besides loopback ones; `*` allows any (a deliberate public open mode). */
  allowedHosts: readonly string[];
}

const LOOPBACK_HOST = /^(localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\])(:\d{1,5})?$/i;
/** The one route whose body is not JSON (multipart uploads). */
const NON_JSON_POST = new Set(['/v1/files']);

/**
 * Open mode (no keys) trusts whoever can reach the socket, and a browser on the operator's
 * machine can: any page may POST there (a form, or fetch with a "simple" content type), and a
 * page whose name rebinds to 127.0.0.1 may read the answers. So without keys a request must
 * name a loopback (or allowed) host, come from no other origin, and send JSON as JSON (which a
 * page cannot do cross-origin without a CORS preflight, answered by nobody here).
 */
export function openModeGuard(deps: ApiDeps, policy: OpenModePolicy): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    if (deps.staticKeys.size > 0 || (await deps.store.hasApiKeys())) return next();
    const host = c.req.header('host') ?? '';
    if (!hostAllowed(host, policy)) {
      throw new AppError(
        'forbidden',
        `Host '${truncateEcho(host)}' is not allowed without API keys: use a loopback address, set OPENBATCH_ALLOWED_HOSTS, or create keys.`,
        { wireCode: 'host_not_allowed' },
      );
    }
    const origin = c.req.header('origin');
    const site = c.req.header('sec-fetch-site');
    const crossSite = site === 'cross-site' || site === 'same-site';
    if ((origin !== undefined || crossSite) && !originAllowed(origin, host, policy)) {
      throw new AppError(
        'forbidden',
        `Cross-origin requests${origin ? ` from '${truncateEcho(origin)}'` : ''} are not allowed without API keys: set OPENBATCH_ALLOWED_ORIGINS or create keys.`,
        { wireCode: 'origin_not_allowed' },
      );
    }
    if (c.req.method === 'POST' && !NON_JSON_POST.has(c.req.path) && hasBody(c.req.raw)) {
      const type = (c.req.header('content-type') ?? '').split(';')[0]?.trim().toLowerCase();
      if (type !== 'application/json') {
        throw new AppError(
          'unsupported_media_type',
          "Request bodies must be JSON sent with 'Content-Type: application/json'.",
        );
      }
    }
    return next();
  };
}

function hostAllowed(host: string, policy: OpenModePolicy): boolean {
  if (LOOPBACK_HOST.test(host) || policy.allowedHosts.includes('*')) return true;
  const name = host.replace(/:\d{1,5}$/, '').toLowerCase();
  return policy.allowedHosts.some((h) => h.toLowerCase() === name);
}

/** The server's own origin (a dashboard it serves) or one on the allow-list. */
function originAllowed(origin: string | undefined, host: string, policy: OpenModePolicy): boolean {
  if (origin === undefined) return false;
  if (origin === `http://${host}` || origin === `https://${host}`) return true;
  return policy.allowedOrigins.includes(origin);
}

function hasBody(req: Request): boolean {
  const length = req.headers.get('content-length');
  return (length !== null && length !== '0') || req.headers.has('transfer-encoding');
}
