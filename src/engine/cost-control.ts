import { nanoToUsd, type PriceBook, type PriceTier } from '../domain/price-book.ts';
import type { ClaimedItem, ItemOutcome, LineCost, RecordedLine } from '../domain/records.ts';
import type { Logger } from '../lib/logger.ts';
import type { BatchError } from '../protocol/batch.ts';
import { tokenizerFor } from '../protocol/model-tokenizer.ts';
import { countRequestTokens, DEFAULT_ASSUMED_MAX_TOKENS } from '../protocol/request-tokens.ts';
import type { TokenUsage } from '../protocol/token-usage.ts';
import type { Store } from '../store/store.ts';

/** Lines of a batch the canary looks at: if they all fail alike, the rest would too. */
export const CANARY_LINES = 10;
/** Characters of a prompt counted exactly for the spend bound (the limiter's figure). */
const EXACT_CHARS = 1_024;

export const SPEND_LIMIT_CODE = 'spend_limit_reached';
export const ERROR_RATE_CODE = 'error_rate_exceeded';

/** What the cost controls need besides the store (built by compose.ts). */
export interface CostSettings {
  prices: PriceBook;
  /** A project's spend cap per batch (USD): the default and the ceiling of `max_cost_usd`. */
  projectMaxCostUsd: ReadonlyMap<string, number>;
  /** Output bound assumed for a line without one, per upstream. */
  defaultMaxTokens?: ReadonlyMap<string, number>;
  /** The price tier lines of an upstream run at (a native batch upstream: `batch`). */
  tierFor?: (upstream: string) => PriceTier;
}

/** What the controls know of one running batch. */
interface BatchBudget {
  project: string;
  capNano: number | null;
  maxErrorRate: number | null;
  chargedNano: number;
  inFlightNano: number;
  /**
   * How far real costs ran over their bounds (≥ 1): the upstream may count a prompt higher than
   * our tokenizer does. Bounds are scaled by it so the cap holds from then on.
   */
  overshoot: number;
  inFlight: number;
  finished: number;
  failed: number;
  /** Signatures of the first failed lines (`404 model_not_found`) and the first such error. */
  firstFailures: Map<string, { count: number; message: string; code: string }>;
  stopping: boolean;
}

/** Money charged by this process for one (upstream, model), and its cache hits. */
export interface CostTotal {
  upstream: string;
  model: string;
  charged_nano: number;
  standard_nano: number;
  cache_hits: number;
}

/** Admission's answer for one line. */
export type Gate = 'go' | 'wait' | 'stop';

/**
 * Per-batch money and failure accounting in the dispatch path: the spend cap is an admission
 * rule (a line goes only while what was charged plus the bound of what is in flight stays under
 * the cap), the canary and `max_error_rate` stop a batch whose lines fail alike. Stopping is a
 * cancel with a reason: the batch goes `cancelling`, its not-run lines get the reason's code.
 */
export class CostControl {
  readonly #store: Store;
  readonly #settings: CostSettings;
  readonly #logger: Logger;
  readonly #nowMs: () => number;
  readonly #batches = new Map<string, BatchBudget>();
  readonly #bounds = new WeakMap<ClaimedItem, number>();
  /** The bound each line in flight added to its batch's in-flight sum. */
  readonly #inFlightBounds = new WeakMap<ClaimedItem, number>();
  /** Cost charged by this process per (upstream, model), for /metrics. */
  readonly #totals = new Map<string, CostTotal>();
  /** Why each batch this process stopped was stopped. */
  readonly #codes = new Map<string, string>();
  /** Set by the engine: the batch is now cancelling; drop its unsent lines everywhere. */
  onStop: (batchId: string) => void = () => undefined;

  constructor(store: Store, settings: CostSettings, logger: Logger, nowMs: () => number) {
    this.#store = store;
    this.#settings = settings;
    this.#logger = logger;
    this.#nowMs = nowMs;
  }

  get prices(): PriceBook {
    return this.#settings.prices;
  }

  /** Loads what the controls need of a batch before its first line here is admitted. */
  async prepare(batchId: string): Promise<void> {
    if (this.#batches.has(batchId)) return;
    const batch = await this.#store.getBatchById(batchId);
    if (!batch || this.#batches.has(batchId)) return;
    this.#evictIdle();
    const projectCap = this.#settings.projectMaxCostUsd.get(batch.project) ?? null;
    const caps = [batch.max_cost_usd ?? null, projectCap].filter((c): c is number => c !== null);
    this.#batches.set(batchId, {
      project: batch.project,
      capNano: caps.length > 0 ? Math.round(Math.min(...caps) * 1e9) : null,
      maxErrorRate: batch.max_error_rate ?? null,
      chargedNano: batch.cost?.charged_nano ?? 0,
      inFlightNano: 0,
      overshoot: 1,
      inFlight: 0,
      finished: 0,
      failed: 0,
      firstFailures: new Map(),
      stopping: batch.stop_code !== null && batch.stop_code !== undefined,
    });
  }

  /** The project a prepared batch belongs to. */
  projectOf(batchId: string): string | null {
    return this.#batches.get(batchId)?.project ?? null;
  }

  tierFor(upstream: string): PriceTier {
    return this.#settings.tierFor?.(upstream) ?? 'standard';
  }

  /** Whether `item` may go now under its batch's spend cap. */
  gate(item: ClaimedItem, upstream: string): Gate {
    const b = this.#batches.get(item.batch_id);
    if (!b) return 'go';
    if (b.stopping) return 'wait'; // its lines are being dropped
    if (b.capNano === null) return 'go';
    const bound = this.#bound(item, upstream) * b.overshoot;
    if (b.chargedNano + b.inFlightNano + bound <= b.capNano) {
      this.#reserve(b, item, bound);
      return 'go';
    }
    if (b.inFlight > 0) return 'wait'; // what is in flight may cost less than its bound
    this.#stop(item.batch_id, b, SPEND_LIMIT_CODE, this.#spendError(b));
    return 'stop';
  }

  /** A line `gate` let through: its bound counts against the cap until `ended`. */
  #reserve(b: BatchBudget, item: ClaimedItem, bound: number): void {
    b.inFlight++;
    this.#inFlightBounds.set(item, bound);
    b.inFlightNano += bound;
  }

  /**
   * The line's call ended (answered or not), or a line `gate` let through did not go after all:
   * its bound leaves the in-flight sum.
   */
  ended(item: ClaimedItem): void {
    const b = this.#batches.get(item.batch_id);
    if (!b || !this.#inFlightBounds.has(item)) return;
    b.inFlight = Math.max(0, b.inFlight - 1);
    b.inFlightNano = Math.max(0, b.inFlightNano - (this.#inFlightBounds.get(item) ?? 0));
    this.#inFlightBounds.delete(item);
  }

  /** Prices an answer's usage and charges it to the batch. */
  charge(item: ClaimedItem, upstream: string, usage: TokenUsage | null, cached: boolean): LineCost {
    const total = this.#totalFor(upstream, item.model);
    if (cached) total.cache_hits++;
    if (cached || !usage) return { charged_nano: 0, standard_nano: 0 };
    const cost = this.prices.lineCost(upstream, item.model, usage, this.tierFor(upstream));
    total.charged_nano += cost.charged_nano;
    total.standard_nano += cost.standard_nano;
    const b = this.#batches.get(item.batch_id);
    if (b) {
      b.chargedNano += cost.charged_nano;
      // How far real costs run over the bounds only matters to a capped batch: an uncapped one
      // never tokenizes its lines for a bound (that was most of this class's per-line cost).
      if (b.capNano === null) return cost;
      const bound = this.#bound(item, upstream);
      if (bound > 0) b.overshoot = Math.min(4, Math.max(b.overshoot, cost.charged_nano / bound));
    }
    return cost;
  }

  /**
   * A line finished (`failure`: its status and error body when it failed for good). The canary
   * stops a batch whose first CANARY_LINES lines all failed with the same non-retryable error;
   * `max_error_rate` stops one whose failed share passes it after that many lines.
   */
  finished(batchId: string, failure: { status: number | null; body: string } | null): void {
    const b = this.#batches.get(batchId);
    if (!b || b.stopping) return;
    b.finished++;
    if (failure) {
      b.failed++;
      if (b.finished <= CANARY_LINES) noteFailure(b, failure);
    }
    if (b.finished < CANARY_LINES) return;
    const same = [...b.firstFailures.values()].find((f) => f.count >= CANARY_LINES);
    // A batch that sets its own max_error_rate replaces the canary (1 turns early stops off).
    if (b.finished === CANARY_LINES && same && b.maxErrorRate === null) {
      const message = `The first ${CANARY_LINES} lines all failed with ${same.code}: ${same.message}`;
      return this.#stop(batchId, b, ERROR_RATE_CODE, batchError(same.code, message));
    }
    if (b.maxErrorRate !== null && b.failed / b.finished > b.maxErrorRate) {
      const rate = (b.failed / b.finished).toFixed(3);
      const message = `${b.failed} of the first ${b.finished} lines failed (${rate} > max_error_rate ${b.maxErrorRate}).`;
      this.#stop(batchId, b, ERROR_RATE_CODE, batchError(ERROR_RATE_CODE, message));
    }
  }

  /** A batch another process stopped early: its lines dropped here get the same code. */
  noteStopCode(batchId: string, code: string): void {
    if (!this.#codes.has(batchId)) this.#codes.set(batchId, code);
    const b = this.#batches.get(batchId);
    if (b) b.stopping = true;
  }

  /** The error line of a line the batch's early stop kept from running (undefined: a plain cancel). */
  stopError(batchId: string): { code: string; message: string } | undefined {
    return notRunError(this.#codes.get(batchId));
  }

  /**
   * Settles a final outcome: prices a response (a cached one costs nothing and is marked in its
   * output line) and feeds the canary.
   */
  settle(
    item: ClaimedItem,
    upstream: string,
    outcome: ItemOutcome,
    answer: { status: number; body: string; cached: boolean } | null,
  ): void {
    if (outcome.kind === 'response') {
      const cached = answer?.cached ?? false;
      outcome.cost = this.charge(item, upstream, outcome.usage, cached);
      if (cached) {
        outcome.cached = true;
        outcome.record = markCached(outcome.record);
      }
      this.finished(item.batch_id, outcome.succeeded ? null : (answer ?? null));
    } else if (outcome.kind === 'error') this.finished(item.batch_id, { status: null, body: '' });
  }

  /** What this process charged since it started, per (upstream, model). */
  totals(): CostTotal[] {
    return [...this.#totals.values()];
  }

  #totalFor(upstream: string, model: string): CostTotal {
    const key = `${upstream}\u0000${model}`;
    let total = this.#totals.get(key);
    if (!total) {
      // Model names come from clients: past 1,000 pairs, new ones count under `other`.
      if (this.#totals.size >= 1_000) return this.#totalFor(upstream, 'other');
      total = { upstream, model, charged_nano: 0, standard_nano: 0, cache_hits: 0 };
      this.#totals.set(key, total);
    }
    return total;
  }

  /** Keeps the table small: batches with nothing in flight are forgotten past 1,000 (reloaded). */
  #evictIdle(): void {
    if (this.#batches.size < 1_000) return;
    for (const [id, b] of this.#batches)
      if (b.inFlight === 0 && !b.stopping) this.#batches.delete(id);
  }

  #stop(batchId: string, b: BatchBudget, code: string, error: BatchError): void {
    b.stopping = true;
    this.#codes.set(batchId, code);
    this.#logger.warn(
      {
        batchId,
        code,
        charged_usd: nanoToUsd(b.chargedNano),
        finished: b.finished,
        failed: b.failed,
      },
      `batch stopped early: ${error.message}`,
    );
    void this.#store
      .stopBatchEarly(batchId, code, [error], this.#nowMs())
      .then((moved) => {
        if (moved) this.onStop(batchId);
      })
      .catch((err: unknown) => {
        b.stopping = false; // try again with the next line
        this.#logger.error({ batchId, err: String(err) }, 'could not stop the batch');
      });
  }

  #spendError(b: BatchBudget): BatchError {
    const cap = nanoToUsd(b.capNano ?? 0);
    const charged = nanoToUsd(b.chargedNano);
    return batchError(
      SPEND_LIMIT_CODE,
      `The batch reached its spend limit: $${charged.toFixed(6)} charged of max_cost_usd $${cap}; the lines not run are in the error file.`,
    );
  }

  /** The most a line can cost (prompt + its whole output bound), counted once per line. */
  #bound(item: ClaimedItem, upstream: string): number {
    let bound = this.#bounds.get(item);
    if (bound === undefined) {
      const body = JSON.parse(item.body) as Record<string, unknown>;
      const defaultMaxTokens =
        this.#settings.defaultMaxTokens?.get(upstream) ?? DEFAULT_ASSUMED_MAX_TOKENS;
      const t = countRequestTokens(body, tokenizerFor(item.model), {
        defaultMaxTokens,
        exactChars: EXACT_CHARS,
      });
      bound = this.prices.boundNano(upstream, item.model, t, this.tierFor(upstream));
      this.#bounds.set(item, bound);
    }
    return bound;
  }
}

function noteFailure(b: BatchBudget, failure: { status: number | null; body: string }): void {
  const { code, message } = describeFailure(failure);
  const final4xx =
    failure.status !== null &&
    failure.status >= 400 &&
    failure.status < 500 &&
    ![408, 409, 429].includes(failure.status);
  const key = final4xx ? `${failure.status} ${code}` : `other ${b.finished}`;
  const seen = b.firstFailures.get(key);
  if (seen) seen.count++;
  else b.firstFailures.set(key, { count: 1, message, code });
}

/** The upstream's error code and message from its envelope (`{error:{code,type,message}}`). */
function describeFailure(failure: { status: number | null; body: string }): {
  code: string;
  message: string;
} {
  let error: Record<string, unknown> = {};
  try {
    const parsed = JSON.parse(failure.body) as { error?: unknown };
    if (parsed.error && typeof parsed.error === 'object')
      error = parsed.error as Record<string, unknown>;
  } catch {
    // not JSON: the status says it
  }
  const code =
    (typeof error.code === 'string' && error.code) ||
    (typeof error.type === 'string' && error.type) ||
    `http_${failure.status ?? 'error'}`;
  const message = typeof error.message === 'string' ? error.message.slice(0, 300) : '';
  return { code, message };
}

function batchError(code: string, message: string): BatchError {
  return { code, message, param: null, line: null };
}

/** The error line of a not-run line, by the batch's stop code. */
export function notRunError(
  stopCode: string | null | undefined,
): { code: string; message: string } | undefined {
  if (stopCode === SPEND_LIMIT_CODE)
    return {
      code: SPEND_LIMIT_CODE,
      message: 'This request was not executed: the batch reached its spend limit (max_cost_usd).',
    };
  if (stopCode === ERROR_RATE_CODE)
    return {
      code: ERROR_RATE_CODE,
      message:
        'This request was not executed: the batch was stopped early because too many of its lines failed.',
    };
  return undefined;
}

/** An output line answered from the response cache gains `"cached": true` (an extension). */
export function markCached(record: RecordedLine): RecordedLine {
  if (!record.text.endsWith('}\n')) return record;
  return { ...record, text: record.text.slice(0, -2) + ', "cached": true}\n' };
}
