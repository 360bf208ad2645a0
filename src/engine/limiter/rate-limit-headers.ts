type Headers = Record<string, string | string[] | undefined>;

/** What an upstream said about its limits in `x-ratelimit-*` headers (absent fields undefined). */
export interface RateLimitHeaders {
  limitRequests?: number;
  limitTokens?: number;
  remainingRequests?: number;
  remainingTokens?: number;
  resetRequestsMs?: number;
  resetTokensMs?: number;
}

const one = (headers: Headers, name: string): string | undefined => {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
};

const count = (headers: Headers, name: string): number | undefined => {
  const n = Number(one(headers, name));
  return one(headers, name) !== undefined && Number.isFinite(n) && n >= 0 ? n : undefined;
};

/** Parses OpenAI's durations: `1s`, `6m0s`, `120ms`, `1m30.5s`, `2h3m`, or plain seconds. */
export function parseResetMs(text: string | undefined): number | undefined {
  if (text === undefined || text === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  let total = 0;
  let matched = '';
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)) {
    const value = Number(m[1]);
    total +=
      m[2] === 'ms'
        ? value
        : m[2] === 's'
          ? value * 1000
          : m[2] === 'm'
            ? value * 60_000
            : value * 3_600_000;
    matched += m[0];
  }
  return matched === text ? total : undefined;
}

/** Reads the six `x-ratelimit-*` headers; returns null when the upstream sends none. */
export function readRateLimitHeaders(headers: Headers): RateLimitHeaders | null {
  const parsed: RateLimitHeaders = {};
  const set = <K extends keyof RateLimitHeaders>(key: K, value: number | undefined): void => {
    if (value !== undefined) parsed[key] = value;
  };
  set('limitRequests', count(headers, 'x-ratelimit-limit-requests'));
  set('limitTokens', count(headers, 'x-ratelimit-limit-tokens'));
  set('remainingRequests', count(headers, 'x-ratelimit-remaining-requests'));
  set('remainingTokens', count(headers, 'x-ratelimit-remaining-tokens'));
  set('resetRequestsMs', parseResetMs(one(headers, 'x-ratelimit-reset-requests')));
  set('resetTokensMs', parseResetMs(one(headers, 'x-ratelimit-reset-tokens')));
  return Object.keys(parsed).length === 0 ? null : parsed;
}
