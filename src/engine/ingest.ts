import type { BatchError } from '../protocol/batch.ts';
import { isBatchEndpoint } from '../protocol/endpoints.ts';
import { readJsonlLines } from '../lib/jsonl-lines.ts';
import type { BatchRecord } from '../domain/records.ts';
import { validateLine, type LineContext } from '../domain/line-validation.ts';
import type { NewItem } from '../store/store.ts';
import type { EngineDeps } from './engine-deps.ts';

const INSERT_CHUNK = 1_000;
const QUEUE_CHUNK = 5_000;
const DEADLINE_BUCKET_MS = 60_000;

interface IngestState {
  errors: BatchError[];
  pending: NewItem[];
  lines: number;
  models: Set<string>;
  embeddingInputs: number;
  tooMany: boolean;
}

/**
 * `validating` → `in_progress` or `failed`: streams the input file line by line (memory bounded
 * by the line limit, not the file), validates each line, and stores valid ones as items. Every
 * bad line is reported with its 1-based number. Safe to re-run after a crash: it starts over.
 */
export async function ingestBatch(deps: EngineDeps, batch: BatchRecord): Promise<void> {
  const { store, clock } = deps;
  await store.resetIngest(batch.id);
  const file = await store.getFile(batch.project, batch.input_file_id);
  if (!file || file.purpose !== 'batch' || !isBatchEndpoint(batch.endpoint)) {
    const message = !file
      ? `Cannot find file ${batch.input_file_id}, or project ${batch.project} does not have access to it.`
      : `File ${batch.input_file_id} was not uploaded with purpose 'batch'.`;
    await store.markFailed(
      batch.id,
      [{ code: 'invalid_request', message, param: 'file_id', line: null }],
      clock.nowMs(),
    );
    return;
  }
  const state = await scanFile(deps, batch, {
    endpoint: batch.endpoint,
    limits: deps.options.limits,
    routeModel: (m) => deps.upstreams.resolve(m)?.name ?? null,
  });
  const errors = summaryErrors(deps, state);
  if (errors.length > 0) {
    await store.markFailed(batch.id, errors, clock.nowMs());
    return;
  }
  const model = state.models.size === 1 ? ([...state.models][0] ?? null) : null;
  const started = await store.markInProgress(batch.id, state.lines, model, clock.nowMs());
  // Cancelled while validating: nothing ran and nothing may, so the batch keeps no lines (total 0).
  if (!started) return store.resetIngest(batch.id);
  await queueAllPending(deps, batch.id);
}

/**
 * Makes a started batch's items claimable, QUEUE_CHUNK per transaction with the event loop free
 * in between: one UPDATE over a 1,000,000-line batch stalled the server 8.5 s and grew the WAL to
 * 373 MB. Claims start on the first chunk. Also resumes a release cut short by a crash.
 */
export async function queueAllPending(deps: EngineDeps, batchId: string): Promise<void> {
  while ((await deps.store.queuePendingItems(batchId, QUEUE_CHUNK)) > 0) {
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

async function scanFile(
  deps: EngineDeps,
  batch: BatchRecord,
  ctx: LineContext,
): Promise<IngestState> {
  const state: IngestState = {
    errors: [],
    pending: [],
    lines: 0,
    models: new Set(),
    embeddingInputs: 0,
    tooMany: false,
  };
  const stream = deps.blobs.openRead(batch.input_file_id);
  try {
    for await (const line of readJsonlLines(stream, ctx.limits.maxLineBytes)) {
      if (line.text !== null && line.text.trim() === '') continue; // blank lines are ignored
      state.lines++;
      if (state.lines > deps.options.limits.maxLines) {
        state.tooMany = true;
        break;
      }
      const verdict = validateLine(line.text, line.lineNo, ctx);
      if (!verdict.ok) {
        state.errors.push(verdict.error);
        continue;
      }
      const { custom_id, model, upstream, body, embeddingInputs } = verdict.line;
      state.models.add(model);
      state.embeddingInputs += embeddingInputs;
      state.pending.push({ line_no: line.lineNo, custom_id, model, upstream, body });
      if (state.pending.length >= INSERT_CHUNK) await flush(deps, batch, state);
    }
    await flush(deps, batch, state);
  } finally {
    stream.destroy();
  }
  state.errors.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  return state;
}

/** Inserts pending items; the store's unique (batch, custom_id) key finds duplicates for us. */
async function flush(deps: EngineDeps, batch: BatchRecord, state: IngestState): Promise<void> {
  if (state.pending.length === 0) return;
  const duplicates = await deps.store.insertItems(
    batch.id,
    batch.endpoint,
    deadlineBucketMs(batch.expires_at_ms),
    state.pending,
  );
  state.pending = [];
  for (const line of duplicates) {
    state.errors.push({
      code: 'duplicate_custom_id',
      message:
        'The custom_id for this request is a duplicate of another request. The custom_id parameter must be unique for each request in a batch.',
      param: 'custom_id',
      line,
    });
  }
}

/**
 * Scheduling deadline of a batch's items: its expiry rounded down to the minute, so batches
 * whose deadlines fall in the same minute count as equal and share the upstream round-robin.
 */
export function deadlineBucketMs(expiresAtMs: number): number {
  return Math.floor(expiresAtMs / DEADLINE_BUCKET_MS) * DEADLINE_BUCKET_MS;
}

/** File-level errors, reported after the per-line ones. */
function summaryErrors(deps: EngineDeps, state: IngestState): BatchError[] {
  const { maxLines, maxEmbeddingInputs } = deps.options.limits;
  const errors = [...state.errors];
  if (state.tooMany) {
    errors.push({
      code: 'too_many_tasks',
      message: `The batch input file contains more than ${maxLines} requests.`,
      param: null,
      line: null,
    });
  } else if (state.lines === 0) {
    errors.push({
      code: 'empty_file',
      message: 'The batch input file is empty.',
      param: null,
      line: null,
    });
  }
  if (state.embeddingInputs > maxEmbeddingInputs) {
    errors.push({
      code: 'too_many_tasks',
      message: `The batch contains ${state.embeddingInputs} embedding inputs; the limit is ${maxEmbeddingInputs}.`,
      param: null,
      line: null,
    });
  }
  return errors;
}
