import type { SimRoute } from './route-types.ts';
import type { SimState } from './sim-state.ts';
import type { SimFile } from './sim-files.ts';
import { parseBatchLine, runBatchLine, type SimBatchLine } from './batch-line-runner.ts';
import type { SimBatchApiOptions } from './types.ts';

type Status =
  | 'validating'
  | 'failed'
  | 'in_progress'
  | 'finalizing'
  | 'completed'
  | 'expired'
  | 'cancelling'
  | 'cancelled';

interface BatchError {
  code: string;
  message: string;
  param: string | null;
  line: number | null;
}

/** One simulated upstream batch; times in epoch ms. */
export interface SimBatch {
  id: string;
  endpoint: string;
  input_file_id: string;
  completion_window: string;
  metadata: Record<string, string> | null;
  status: Status;
  model: string | null;
  lines: SimBatchLine[];
  tokens: number;
  errors: BatchError[] | null;
  processed: number;
  completed: number;
  failed: number;
  output: string[];
  error: string[];
  usage: { input_tokens: number; output_tokens: number; total_tokens: number };
  output_file_id: string | null;
  error_file_id: string | null;
  times: Partial<Record<`${Status}_at` | 'created_at' | 'expires_at', number>>;
}

const TERMINAL = new Set<Status>(['failed', 'completed', 'expired', 'cancelled']);
/** Statuses whose prompt tokens count against the model's enqueued-token limit. */
const ENQUEUED = new Set<Status>(['in_progress', 'finalizing', 'cancelling']);
const WINDOW = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;

/**
 * OpenAI-like batches over the simulator's routes: validated at the first look after creation
 * (enqueued-token limit per model, one model per batch), lines finish evenly over `turnaroundMs`,
 * cancel and expiry keep the results of the lines done so far. Advanced lazily, when read.
 */
export class SimBatches {
  readonly #state: SimState;
  readonly #routes: ReadonlyMap<string, SimRoute>;
  readonly #options: SimBatchApiOptions;
  readonly #files: Map<string, SimFile>;
  readonly #batches = new Map<string, SimBatch>();

  constructor(
    state: SimState,
    routes: ReadonlyMap<string, SimRoute>,
    options: SimBatchApiOptions,
    files: Map<string, SimFile>,
  ) {
    this.#state = state;
    this.#routes = routes;
    this.#options = options;
    this.#files = files;
  }

  create(params: {
    input_file_id: string;
    endpoint: string;
    completion_window: string;
    metadata: Record<string, string> | null;
  }): SimBatch {
    const now = this.#state.clock.nowMs();
    const windowMs = this.#options.windowMs ?? parseWindowMs(params.completion_window);
    const batch: SimBatch = {
      ...params,
      id: this.#state.newId('batch_'),
      status: 'validating',
      model: null,
      lines: [],
      tokens: 0,
      errors: null,
      processed: 0,
      completed: 0,
      failed: 0,
      output: [],
      error: [],
      usage: { input_tokens: 0, output_tokens: 0, total_tokens: 0 },
      output_file_id: null,
      error_file_id: null,
      times: { created_at: now, expires_at: now + windowMs },
    };
    this.#batches.set(batch.id, batch);
    return batch;
  }

  get(id: string): SimBatch | null {
    this.advanceAll();
    return this.#batches.get(id) ?? null;
  }

  /** Newest first. */
  list(): SimBatch[] {
    this.advanceAll();
    return [...this.#batches.values()].reverse();
  }

  cancel(id: string): SimBatch | null {
    const batch = this.get(id);
    if (!batch) return null;
    if (batch.status === 'validating' || batch.status === 'in_progress') {
      batch.status = 'cancelling';
      batch.times.cancelling_at = this.#state.clock.nowMs();
    }
    return batch;
  }

  /** Every batch ever created (tests check that none was created twice). */
  all(): readonly SimBatch[] {
    return [...this.#batches.values()];
  }

  advanceAll(): void {
    const now = this.#state.clock.nowMs();
    for (const batch of this.#batches.values()) this.#advance(batch, now);
  }

  #advance(batch: SimBatch, now: number): void {
    if (TERMINAL.has(batch.status)) return;
    if (batch.status === 'validating') this.#validate(batch, now);
    if (batch.status === 'in_progress') this.#progress(batch, now);
    const expiresAt = batch.times.expires_at ?? Infinity;
    if (!TERMINAL.has(batch.status) && now >= expiresAt) return this.#end(batch, 'expired', now);
    if (batch.status === 'cancelling') {
      const since = batch.times.cancelling_at ?? now;
      if (now >= since + (this.#options.cancelDelayMs ?? 0)) this.#end(batch, 'cancelled', now);
    }
  }

  #validate(batch: SimBatch, now: number): void {
    const file = this.#files.get(batch.input_file_id);
    if (!file) return this.#fail(batch, now, [notFound(batch.input_file_id)]);
    const errors: BatchError[] = [];
    const text = file.content.toString('utf8');
    let lineNo = 0;
    for (const raw of text.split('\n')) {
      lineNo++;
      if (raw.trim() === '') continue;
      const line = parseBatchLine(raw);
      if ('code' in line) errors.push({ ...line, line: lineNo });
      else if (batch.model !== null && line.model !== batch.model)
        errors.push(mismatched(line.model, batch.model, lineNo));
      else {
        batch.model = line.model;
        batch.lines.push(line);
        batch.tokens += line.tokens;
      }
    }
    if (errors.length > 0) return this.#fail(batch, now, errors);
    const limit = this.#queueLimit(batch.model ?? '');
    if (limit !== null && this.#enqueued(batch.model ?? '') + batch.tokens > limit)
      return this.#fail(batch, now, [tokenLimit(batch.model ?? '', limit, this.#org)]);
    batch.status = 'in_progress';
    batch.times.in_progress_at = now;
  }

  #progress(batch: SimBatch, now: number): void {
    const turnaround = this.#options.turnaroundMs ?? 1_000;
    const started = batch.times.in_progress_at ?? now;
    const due =
      turnaround <= 0
        ? batch.lines.length
        : Math.min(
            batch.lines.length,
            Math.floor((batch.lines.length * (now - started)) / turnaround),
          );
    while (batch.processed < due) this.#runNext(batch);
    if (batch.processed === batch.lines.length) this.#end(batch, 'completed', now);
  }

  #runNext(batch: SimBatch): void {
    const line = batch.lines[batch.processed++];
    if (!line) return;
    const result = runBatchLine(this.#state, this.#routes, line);
    batch[result.file].push(result.text);
    if (result.file === 'output') batch.completed++;
    else batch.failed++;
    if (result.usage) {
      batch.usage.input_tokens += result.usage.prompt_tokens;
      batch.usage.output_tokens += result.usage.completion_tokens;
      batch.usage.total_tokens += result.usage.total_tokens;
    }
  }

  #end(batch: SimBatch, status: 'completed' | 'expired' | 'cancelled', now: number): void {
    if (status === 'completed') batch.times.finalizing_at = now;
    batch.status = status;
    batch.times[`${status}_at`] = now;
    batch.output_file_id = this.#publish(batch, 'output', batch.output, now);
    batch.error_file_id = this.#publish(batch, 'error', batch.error, now);
  }

  #publish(batch: SimBatch, kind: string, lines: string[], now: number): string | null {
    if (lines.length === 0) return null;
    const id = this.#state.newId('file-');
    const content = Buffer.from(lines.join(''));
    const filename = `${batch.id}_${kind}.jsonl`;
    this.#files.set(id, { id, purpose: 'batch_output', filename, content, createdAtMs: now });
    return id;
  }

  #fail(batch: SimBatch, now: number, errors: BatchError[]): void {
    batch.status = 'failed';
    batch.errors = errors;
    batch.lines = [];
    batch.times.failed_at = now;
  }

  #queueLimit(model: string): number | null {
    return this.#options.queueTokens?.[model] ?? this.#options.defaultQueueTokens ?? null;
  }

  #enqueued(model: string): number {
    let sum = 0;
    for (const b of this.#batches.values())
      if (b.model === model && ENQUEUED.has(b.status)) sum += b.tokens;
    return sum;
  }

  get #org(): string {
    return this.#options.organization ?? 'org-sim';
  }
}

function parseWindowMs(window: string): number {
  const m = WINDOW.exec(window.trim());
  if (!m || window.trim() === '') return 24 * 3_600_000;
  const [, h = '0', min = '0', s = '0'] = m;
  return (Number(h) * 3600 + Number(min) * 60 + Number(s)) * 1000;
}

/** OpenAI's message (openai/openai-python#2084), with the limit formatted as it does. */
function tokenLimit(model: string, limit: number, org: string): BatchError {
  return {
    code: 'token_limit_exceeded',
    message: `Enqueued token limit reached for ${model} in organization ${org}. Limit: ${limit.toLocaleString('en-US')} enqueued tokens. Please try again once some in_progress batches have been completed.`,
    param: null,
    line: null,
  };
}

function mismatched(model: string, batchModel: string, line: number): BatchError {
  return {
    code: 'mismatched_model',
    message: `The provided model '${model}' does not match the model '${batchModel}' of the other requests in this batch.`,
    param: 'body.model',
    line,
  };
}

function notFound(fileId: string): BatchError {
  return {
    code: 'invalid_request',
    message: `Cannot find file ${fileId}, or organization org-sim does not have access to it.`,
    param: 'file_id',
    line: null,
  };
}

/** The wire Batch object. */
export function batchObject(b: SimBatch): Record<string, unknown> {
  const sec = (ms: number | undefined): number | null =>
    ms === undefined ? null : Math.floor(ms / 1000);
  return {
    id: b.id,
    object: 'batch',
    endpoint: b.endpoint,
    model: b.model,
    errors: b.errors ? { object: 'list', data: b.errors } : null,
    input_file_id: b.input_file_id,
    completion_window: b.completion_window,
    status: b.status,
    output_file_id: b.output_file_id,
    error_file_id: b.error_file_id,
    created_at: sec(b.times.created_at),
    in_progress_at: sec(b.times.in_progress_at),
    expires_at: sec(b.times.expires_at),
    finalizing_at: sec(b.times.finalizing_at),
    completed_at: sec(b.times.completed_at),
    failed_at: sec(b.times.failed_at),
    expired_at: sec(b.times.expired_at),
    cancelling_at: sec(b.times.cancelling_at),
    cancelled_at: sec(b.times.cancelled_at),
    request_counts: { total: b.lines.length, completed: b.completed, failed: b.failed },
    usage: {
      input_tokens: b.usage.input_tokens,
      input_tokens_details: { cached_tokens: 0 },
      output_tokens: b.usage.output_tokens,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: b.usage.total_tokens,
    },
    metadata: b.metadata,
  };
}
