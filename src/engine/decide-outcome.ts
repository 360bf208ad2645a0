import type { ClaimedItem, ItemOutcome, LineKey } from '../domain/records.ts';
import { usageFromResponse } from '../protocol/token-usage.ts';
import { ProviderError, type UpstreamResponse } from '../providers/provider.ts';
import { errorLine, responseLine } from './output-lines.ts';
import { nextDelayMs, type RetryPolicy } from './retry-policy.ts';

/** An outcome plus, for a 429, how long the whole upstream key should pause. */
export interface Decision {
  outcome: ItemOutcome;
  cooldownMs: number | null;
  /** The attempt failed after the request may have been processed (may have cost money). */
  maybePaid: boolean;
}

/** Turns an upstream answer into what is recorded for the item. */
export function decideFromResponse(
  item: ClaimedItem,
  res: UpstreamResponse,
  policy: RetryPolicy,
  nowMs: number,
): Decision {
  const key = lineKey(item);
  const requestId = res.requestId ?? '';
  const error = res.failure;
  if (error === null) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(res.body);
    } catch {
      const bad = new ProviderError(
        'invalid_response',
        `upstream answered ${res.status} with a body that is not JSON`,
      );
      return decideFromError(item, bad, policy, nowMs);
    }
    return {
      outcome: {
        kind: 'response',
        ...key,
        succeeded: true,
        usage: usageFromResponse(parsed),
        record: responseLine(
          item.batch_id,
          item.custom_id,
          { succeeded: true, status_code: res.status, request_id: requestId, body: res.body },
          nowMs,
        ),
      },
      cooldownMs: null,
      maybePaid: false,
    };
  }
  const final: ItemOutcome = {
    kind: 'response',
    ...key,
    succeeded: false,
    usage: null,
    record: responseLine(
      item.batch_id,
      item.custom_id,
      {
        succeeded: false,
        status_code: res.status,
        request_id: requestId,
        body: errorBodyText(res.body, res.status),
      },
      nowMs,
    ),
  };
  if (error.kind === 'rate_limited' && !isQuotaError(res.body) && error.retryable) {
    const waitMs = nextDelayMs(policy, item.attempts, error.retryAfterMs);
    return {
      outcome: {
        kind: 'retry',
        ...key,
        not_before_ms: nowMs + waitMs,
        refund_attempt: true,
        last_error: error.message,
      },
      cooldownMs: waitMs,
      maybePaid: false,
    };
  }
  if (error.retryable && !isQuotaError(res.body) && item.attempts < policy.maximumAttempts) {
    const waitMs = nextDelayMs(policy, item.attempts, error.retryAfterMs);
    return {
      outcome: {
        kind: 'retry',
        ...key,
        not_before_ms: nowMs + waitMs,
        refund_attempt: false,
        last_error: error.message,
      },
      cooldownMs: null,
      maybePaid: false,
    };
  }
  return { outcome: final, cooldownMs: null, maybePaid: false };
}

/** Turns a transport failure (reset, timeout, bad body) into a retry or a final error line. */
export function decideFromError(
  item: ClaimedItem,
  error: ProviderError,
  policy: RetryPolicy,
  nowMs: number,
): Decision {
  const key = lineKey(item);
  if (error.retryable && item.attempts < policy.maximumAttempts) {
    const waitMs = nextDelayMs(policy, item.attempts, error.retryAfterMs);
    return {
      outcome: {
        kind: 'retry',
        ...key,
        not_before_ms: nowMs + waitMs,
        refund_attempt: false,
        last_error: error.message,
      },
      cooldownMs: null,
      maybePaid: error.maybeSent,
    };
  }
  return {
    outcome: {
      kind: 'error',
      ...key,
      record: errorLine(
        item.batch_id,
        item.custom_id,
        {
          code: 'upstream_error',
          message: `The request failed after ${item.attempts} attempt(s): ${error.message}.`,
        },
        nowMs,
      ),
    },
    cooldownMs: null,
    maybePaid: error.maybeSent,
  };
}

function lineKey(item: ClaimedItem): LineKey {
  return { chunk_id: item.chunk_id, lease_gen: item.lease_gen, index: item.index };
}

/** `insufficient_quota` 429s never clear by waiting: they are final, not rate limits. */
function isQuotaError(body: string): boolean {
  return body.includes('insufficient_quota');
}

/** Keeps the upstream's error body; wraps a non-JSON one in OpenAI's envelope. */
function errorBodyText(body: string, status: number): string {
  try {
    JSON.parse(body);
    return body;
  } catch {
    return JSON.stringify({
      error: {
        message: body.slice(0, 2000) || `upstream answered ${status}`,
        type: 'upstream_error',
        param: null,
        code: null,
      },
    });
  }
}
