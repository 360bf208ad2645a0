import { createHash } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { AppError } from '../domain/app-error.ts';
import type { ApiDeps, ApiEnv } from './api-deps.ts';

/** The project every request belongs to when no keys are configured (loopback-only mode). */
export const DEFAULT_PROJECT = 'default';

export const hashApiKey = (key: string): string => createHash('sha256').update(key).digest('hex');

const NO_KEY =
  "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).";

/** Stops callers that are not admins (keys mode without an admin key). */
export const requireAdmin: MiddlewareHandler<ApiEnv> = async (c, next) => {
  if (c.get('role') !== 'admin')
    throw new AppError('forbidden', 'This needs an admin key (openbatch keys create --admin).');
  return next();
};

/** Shows only the last four characters, as OpenAI does, so a pasted key never echoes whole. */
function maskKey(key: string): string {
  return key.length <= 8 ? '****' : `${key.slice(0, 3)}****${key.slice(-4)}`;
}

/**
 * Resolves the caller's project from `Authorization: Bearer …`. With no keys configured anywhere,
 * every caller is the default project (the server then binds to loopback only).
 */
export function authMiddleware(deps: ApiDeps): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    const keyed = deps.staticKeys.size > 0 || (await deps.store.hasApiKeys());
    if (!keyed) {
      // Open mode serves one person on loopback: the operator, who sees everything.
      c.set('project', DEFAULT_PROJECT);
      c.set('role', 'admin');
      return next();
    }
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match?.[1]) throw new AppError('unauthenticated', NO_KEY);
    const key = match[1];
    const hash = hashApiKey(key);
    const grant = deps.staticKeys.get(hash) ?? (await deps.store.keyByHash(hash));
    if (!grant) {
      throw new AppError(
        'unauthenticated',
        `Incorrect API key provided: ${maskKey(key)}. You can create an API key with 'openbatch keys create'.`,
        { wireCode: 'invalid_api_key' },
      );
    }
    c.set('project', grant.project);
    c.set('role', grant.role);
    return next();
  };
}
