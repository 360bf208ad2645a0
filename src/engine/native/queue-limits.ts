/**
 * Enqueued-token limits per model of one upstream: configured (`batchQueueTokens`) or learned
 * from `token_limit_exceeded` ("… Limit: 90,000 enqueued tokens. …"). Sub-batches are planned
 * to `limit × share`; a rejection of a sub-batch that was planned within the limit (our estimate
 * ran low) halves the share, so the next plan fits.
 */
export class QueueLimits {
  readonly #limits = new Map<string, number>();
  readonly #share = new Map<string, number>();

  constructor(configured: Record<string, number>) {
    for (const [model, limit] of Object.entries(configured)) this.#limits.set(model, limit);
  }

  /** Tokens the model may have enqueued at once (Infinity while none is known). */
  budget(model: string): number {
    const limit = this.#limits.get(model);
    return limit === undefined ? Infinity : Math.floor(limit * (this.#share.get(model) ?? 1));
  }

  /** A sub-batch of `tokens` (estimated) was rejected; returns the limit learned, if any. */
  rejected(model: string, tokens: number, message: string, othersOpen: boolean): number | null {
    const learned = parseQueueLimit(message);
    if (learned !== null) this.#limits.set(model, learned);
    const limit = this.#limits.get(model);
    if (!othersOpen && limit !== undefined && tokens <= this.budget(model))
      this.#share.set(model, (this.#share.get(model) ?? 1) / 2);
    return learned;
  }
}

/** The limit in OpenAI's `token_limit_exceeded` message, or null. */
export function parseQueueLimit(message: string): number | null {
  const match = /Limit:\s*([\d,]+)\s*enqueued tokens/i.exec(message);
  if (!match?.[1]) return null;
  const n = Number(match[1].replaceAll(',', ''));
  return Number.isSafeInteger(n) && n > 0 ? n : null;
}
