import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { ErrorBody } from '../protocol/error-body.ts';
import { AppError, type AppErrorCode } from '../domain/app-error.ts';
import { coerceError } from '../lib/coerce-error.ts';
import type { Logger } from '../lib/logger.ts';

const STATUS: Record<AppErrorCode, ContentfulStatusCode> = {
  invalid_request: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  unsupported_media_type: 415,
  rate_limited: 429,
  upstream_unavailable: 502,
  store_unavailable: 503,
  internal: 500,
};

const TYPE: Record<AppErrorCode, string> = {
  invalid_request: 'invalid_request_error',
  unauthenticated: 'invalid_request_error',
  forbidden: 'invalid_request_error',
  not_found: 'invalid_request_error',
  conflict: 'invalid_request_error',
  unsupported_media_type: 'invalid_request_error',
  rate_limited: 'rate_limit_error',
  upstream_unavailable: 'server_error',
  store_unavailable: 'server_error',
  internal: 'server_error',
};

/** The one place an error becomes an HTTP status and OpenAI's envelope. */
export function errorResponse(c: Context, err: unknown, logger: Logger): Response {
  if (err instanceof AppError) {
    const body: ErrorBody = {
      error: { message: err.message, type: TYPE[err.code], param: err.param, code: err.wireCode },
    };
    if (err.code === 'unauthenticated') c.header('www-authenticate', 'Bearer realm="OpenAI API"');
    return c.json(body, STATUS[err.code]);
  }
  // Only our own bugs reach here; the message stays generic so nothing internal leaks.
  logger.error(
    { err: coerceError(err).message, path: c.req.path, request_id: c.get('requestId') as unknown },
    'unhandled error',
  );
  const body: ErrorBody = {
    error: {
      message: 'The server had an error while processing your request.',
      type: 'server_error',
      param: null,
      code: null,
    },
  };
  return c.json(body, 500);
}

/** OpenAI's answer for a route that does not exist. */
export function notFoundResponse(c: Context): Response {
  const body: ErrorBody = {
    error: {
      message: `Invalid URL (${c.req.method} ${c.req.path})`,
      type: 'invalid_request_error',
      param: null,
      code: null,
    },
  };
  return c.json(body, 404);
}
