import type {
  WebhookAttemptUpdate,
  WebhookDeliveryRecord,
  WebhookSendResult,
} from '../domain/webhooks.ts';

/** When to try a delivery again, and when to stop trying. */
export interface WebhookRetryPolicy {
  /** The first retry comes this long after the first attempt. @default 5_000 */
  retryInitialMs: number;
  /** Longest wait between two attempts. @default 3_600_000 */
  retryMaxMs: number;
  /** No attempt is made this long after the event. @default 72 h */
  giveUpAfterMs: number;
}

export const DEFAULT_WEBHOOK_RETRY: WebhookRetryPolicy = {
  retryInitialMs: 5_000,
  retryMaxMs: 3_600_000,
  giveUpAfterMs: 72 * 3600 * 1000,
};

/** Exponential backoff with ±20% jitter, so receivers that went down together are not hit together. */
export function webhookBackoffMs(attempts: number, policy: WebhookRetryPolicy): number {
  const base = Math.min(policy.retryInitialMs * 2 ** Math.max(0, attempts - 1), policy.retryMaxMs);
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

/** A 2xx delivers; a refusal (private target) fails at once; anything else retries until the give-up time. */
export function attemptUpdate(
  delivery: WebhookDeliveryRecord,
  result: WebhookSendResult,
  nowMs: number,
  policy: WebhookRetryPolicy,
): WebhookAttemptUpdate {
  const attempts = delivery.attempts + 1;
  const status = result.kind === 'response' ? result.status : null;
  const error =
    result.kind === 'response'
      ? `HTTP ${result.status}`
      : result.kind === 'refused'
        ? `refused: ${result.reason}`
        : result.message;
  const ended = { attempts, next_attempt_ms: nowMs, last_status: status, finished_at_ms: nowMs };
  if (status !== null && status >= 200 && status < 300)
    return { ...ended, state: 'delivered', last_error: null };
  if (result.kind === 'refused') return { ...ended, state: 'failed', last_error: error };
  const next = nowMs + webhookBackoffMs(attempts, policy);
  if (next > delivery.created_at_ms + policy.giveUpAfterMs)
    return { ...ended, state: 'failed', last_error: `${error}; gave up` };
  return {
    ...ended,
    state: 'pending',
    next_attempt_ms: next,
    last_error: error,
    finished_at_ms: null,
  };
}
