/** When and how often a failed line is tried again (Temporal's RetryPolicy shape). */
export interface RetryPolicy {
  /** Delay before the first retry. @default 1_000 */
  initialIntervalMs: number;
  /** Growth of the delay per attempt. @default 2 */
  backoffCoefficient: number;
  /** Ceiling of the delay. @default 60_000 */
  maximumIntervalMs: number;
  /** Attempts in all, first one included; a 429 does not use one up. @default 5 */
  maximumAttempts: number;
  /** Longest `retry-after` honoured; longer hints are capped. @default 600_000 */
  maximumRetryAfterMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  initialIntervalMs: 1_000,
  backoffCoefficient: 2,
  maximumIntervalMs: 60_000,
  maximumAttempts: 5,
  maximumRetryAfterMs: 600_000,
};

/** Throws at engine start for a policy that could loop forever or never wait. */
export function validateRetryPolicy(p: RetryPolicy): void {
  if (!(p.maximumAttempts >= 1 && Number.isInteger(p.maximumAttempts)))
    throw new Error('retry.maximumAttempts must be an integer >= 1');
  if (!(p.initialIntervalMs >= 0 && p.maximumIntervalMs >= p.initialIntervalMs))
    throw new Error('retry intervals must satisfy 0 <= initial <= maximum');
  if (!(p.backoffCoefficient >= 1)) throw new Error('retry.backoffCoefficient must be >= 1');
}

/**
 * Delay before the next try after `attempts` tries: the upstream's retry-after when given
 * (capped), else exponential backoff with "full jitter" between 75% and 100% of the step, so
 * many lines failing together do not retry in lockstep.
 */
export function nextDelayMs(
  p: RetryPolicy,
  attempts: number,
  retryAfterMs: number | null,
  random: () => number = Math.random,
): number {
  if (retryAfterMs !== null) return Math.min(retryAfterMs, p.maximumRetryAfterMs);
  const step = Math.min(
    p.initialIntervalMs * p.backoffCoefficient ** Math.max(0, attempts - 1),
    p.maximumIntervalMs,
  );
  return Math.round(step * (1 - random() * 0.25));
}
