import type { IncomingHttpHeaders } from 'node:http';
import { Pool } from 'undici';
import type { CallStop } from '../lib/call-stop.ts';
import { classifyStatus, classifyTransportError } from './classify.ts';
import { ProviderError, type Upstream, type UpstreamStream } from './provider.ts';

/** How to reach one OpenAI-compatible endpoint. */
export interface OpenAiCompatibleOptions {
  name: string;
  /** Base URL including the version prefix, e.g. `https://api.openai.com/v1`. */
  baseUrl: string;
  apiKey: string | null;
  /** Connections in the pool. */
  maxConcurrency: number;
  /** Time to wait for response headers. @default 600_000 */
  headersTimeoutMs: number;
  /** Longest gap between body chunks. @default 600_000 */
  bodyTimeoutMs: number;
  /** Largest response body accepted. @default 64 MiB */
  maxResponseBytes: number;
  /** Clock for HTTP-date `retry-after` values. @default Date.now */
  nowMs?: () => number;
}

const FORWARDED_RESPONSE_HEADERS =
  /^(content-type|x-request-id|openai-.*|x-ratelimit-.*|retry-after(-ms)?)$/i;

/** An upstream reached through an undici Pool with explicit timeouts. */
export function createOpenAiCompatible(opts: OpenAiCompatibleOptions): Upstream {
  const base = new URL(opts.baseUrl);
  const prefix = base.pathname.replace(/\/+$/, '');
  const pool = new Pool(base.origin, {
    connections: opts.maxConcurrency,
    headersTimeout: opts.headersTimeoutMs,
    bodyTimeout: opts.bodyTimeoutMs,
    keepAliveTimeout: 30_000,
  });
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'application/json',
  };
  if (opts.apiKey) headers.authorization = `Bearer ${opts.apiKey}`;
  // `/v1/chat/completions` against a base of `…/v1` becomes `…/v1/chat/completions`.
  const pathFor = (path: string): string => prefix + path.replace(/^\/v1(?=\/|$)/, '');

  const request = async (
    method: 'GET' | 'POST',
    path: string,
    body: string | undefined,
    signal: AbortSignal,
  ) => {
    try {
      return await pool.request({
        method,
        path: pathFor(path),
        headers,
        body: body ?? null,
        signal,
      });
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      throw classifyTransportError(err);
    }
  };

  return {
    name: opts.name,
    maxConcurrency: opts.maxConcurrency,
    send: async ({ path, body, stop }) => {
      const res = await post(
        pool,
        { path: pathFor(path), headers, body },
        stop,
        opts.maxResponseBytes,
      );
      const rid = res.headers['x-request-id'];
      const failure = classifyStatus(res.status, res.headers, (opts.nowMs ?? Date.now)());
      return { ...res, requestId: typeof rid === 'string' ? rid : null, failure };
    },
    forward: async ({ method, path, body, signal }): Promise<UpstreamStream> => {
      const res = await request(method, path, body, signal);
      const passed: Record<string, string> = {};
      for (const [key, value] of Object.entries(res.headers)) {
        if (typeof value === 'string' && FORWARDED_RESPONSE_HEADERS.test(key)) passed[key] = value;
      }
      return { status: res.statusCode, headers: passed, body: res.body };
    },
    close: async () => {
      await pool.close();
    },
  };
}

/**
 * One POST through undici's dispatch API: the answer is gathered by a handler, with no response
 * stream, request handler object or AbortSignal per call (undici's `request` builds all three,
 * which cost as much as the rest of a line's handling together).
 */
function post(
  pool: Pool,
  req: { path: string; headers: Record<string, string>; body: string },
  stop: CallStop,
  maxBytes: number,
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let status = 0;
    let headers: IncomingHttpHeaders = {};
    // A stopped call rejects with the abort error; the caller reads why from `stop.reason`.
    const fail = (err: Error): void =>
      reject(stop.stopped || err instanceof ProviderError ? err : classifyTransportError(err));
    pool.dispatch(
      { method: 'POST', path: req.path, headers: req.headers, body: req.body },
      {
        onRequestStart: (controller) => stop.onStop((reason) => controller.abort(reason)),
        onResponseStart: (_controller, statusCode, responseHeaders) => {
          status = statusCode;
          headers = responseHeaders;
        },
        onResponseData: (controller, chunk) => {
          size += chunk.length;
          if (size > maxBytes) {
            controller.abort(
              new ProviderError('invalid_response', `upstream response exceeded ${maxBytes} bytes`),
            );
            return;
          }
          chunks.push(chunk);
        },
        onResponseEnd: () =>
          resolve({ status, headers, body: Buffer.concat(chunks, size).toString('utf8') }),
        onResponseError: (_controller, err) => fail(err),
      },
    );
  });
}
