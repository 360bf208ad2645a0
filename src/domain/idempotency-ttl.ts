/** How long an Idempotency-Key holds: a retry within this answers with the first result. */
export const IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000;
