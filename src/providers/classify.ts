import { ProviderError } from './provider.ts';

type Headers = Record<string, string | string[] | undefined>;

const header = (headers: Headers, name: string): string | undefined => {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
};

/**
 * Reads how long the upstream asked us to wait: `retry-after-ms` first, then `retry-after` as
 * seconds or an HTTP date (openai-node's order). Null when absent or unparsable.
 */
export function retryAfterMsFrom(headers: Headers, nowMs: number): number | null {
  const ms = Number(header(headers, 'retry-after-ms'));
  if (header(headers, 'retry-after-ms') !== undefined && Number.isFinite(ms) && ms >= 0) return ms;
  const raw = header(headers, 'retry-after');
  if (raw === undefined) return null;
  const seconds = Number(raw);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(raw);
  return Number.isNaN(date) ? null : Math.max(0, date - nowMs);
}

/** Classifies a non-2xx answer (null for 2xx), following openai-node's `shouldRetry`. */
export function classifyStatus(
  status: number,
  headers: Headers,
  nowMs: number,
): ProviderError | null {
  if (status >= 200 && status < 300) return null;
  const hint = header(headers, 'x-should-retry');
  const shouldRetry = hint === 'true' ? true : hint === 'false' ? false : null;
  const opts = { status, retryAfterMs: retryAfterMsFrom(headers, nowMs), shouldRetry };
  if (status === 429) return new ProviderError('rate_limited', `upstream answered 429`, opts);
  if (status === 408) return new ProviderError('timeout', `upstream answered 408`, opts);
  if (status === 409 || status >= 500)
    return new ProviderError('server', `upstream answered ${status}`, opts);
  return new ProviderError('client', `upstream answered ${status}`, opts);
}

const NOT_SENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);
const TIMEOUT_CODES = new Set([
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** Classifies a transport failure (socket reset, refused connection, timeout). */
export function classifyTransportError(err: unknown): ProviderError {
  const code = (err as { code?: unknown } | null)?.code;
  const codeText = typeof code === 'string' ? code : 'UNKNOWN';
  const maybeSent = !NOT_SENT_CODES.has(codeText);
  const kind = TIMEOUT_CODES.has(codeText) ? 'timeout' : 'connection';
  return new ProviderError(kind, `upstream ${kind} error (${codeText})`, { maybeSent, cause: err });
}
