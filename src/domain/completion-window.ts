import { truncateEcho } from './echo-limits.ts';
import { badRequest } from './app-error.ts';

const MIN_WINDOW_MS = 10_000;
const MAX_WINDOW_MS = 168 * 3_600_000;
const DURATION = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;

/**
 * Parses a completion window: OpenAI's `24h`, or (our extension) any `XhYmZs` duration from 10s
 * to 168h. Throws the 400 a client would get from OpenAI for an unsupported value.
 */
export function parseCompletionWindowMs(value: unknown): number {
  if (typeof value !== 'string') throw invalidWindow(value);
  const match = DURATION.exec(value.trim());
  if (!match || value.trim() === '') throw invalidWindow(value);
  const [, h = '0', m = '0', s = '0'] = match;
  const ms = (Number(h) * 3600 + Number(m) * 60 + Number(s)) * 1000;
  if (ms < MIN_WINDOW_MS || ms > MAX_WINDOW_MS) throw invalidWindow(value);
  return ms;
}

function invalidWindow(value: unknown) {
  return badRequest(
    `Invalid value: '${truncateEcho(String(value))}'. Supported values are: '24h' (or, on openbatch, a duration from '10s' to '168h' such as '30m' or '2h').`,
    { param: 'completion_window', wireCode: 'invalid_value' },
  );
}
