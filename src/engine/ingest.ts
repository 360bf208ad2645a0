import type { BatchError } from '../protocol/batch.ts';
import { BatchErrorList } from '../domain/batch-errors.ts';
import { isBatchEndpoint } from '../protocol/endpoints.ts';
import { readJsonlLines } from '../lib/jsonl-lines.ts';
import type { BatchRecord } from '../domain/records.ts';
import { validateLine, type LineContext } from '../domain/line-validation.ts';
import { CHUNK_MAX_BYTES, CHUNK_MAX_LINES } from '../domain/chunk-lines.ts';
import type { NewChunk } from '../store/store.ts';
import { CustomIdIndex } from './custom-id-index.ts';
import type { EngineDeps } from './engine-deps.ts';

/** Chunks stored per transaction while validating. */
const INSERT_CHUNKS = 64;
/** Chunks made claimable per transaction when a batch starts. */
const QUEUE_CHUNKS = 500;
const DEADLINE_BUCKET_MS = 60_000;

interface IngestState {
  errors: BatchErrorList;
  /** The chunk being filled, and finished chunks not yet stored. */
  open: NewChunk | null;
  pending: NewChunk[];
  customIds: CustomIdIndex;
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
  // Native batch passthrough: lines of an upstream chosen native go to its native queue.
  const routing = await deps.execution?.routingFor(batch);
  const state = await scanFile(deps, batch, {
    endpoint: batch.endpoint,
    limits: deps.options.limits,
    routeModel: (m) => {
      const name = deps.upstreams.resolve(m)?.name;
      if (name === undefined) return null;
      return routing ? routing.queueFor(name) : name;
    },
  });
  const errors = state.errors.toList(fileErrors(deps, state));
  if (errors.length > 0) {
    await store.markFailed(batch.id, errors, clock.nowMs());
    return;
  }
  const execution = routing?.execution();
  if (execution) await store.native.setExecution(batch.id, execution);
  const model = state.models.size === 1 ? ([...state.models][0] ?? null) : null;
  const started = await store.markInProgress(batch.id, state.lines, model, clock.nowMs());
  // Cancelled while validating: nothing ran and nothing may, so the batch keeps no lines (total 0).
  if (!started) return store.resetIngest(batch.id);
  await queueAllPending(deps, batch.id);
}

/**
 * Makes a started batch's chunks claimable, QUEUE_CHUNKS per transaction with the event loop free
 * in between, so a huge batch never holds the writer for long. Claims start on the first ones.
 * Also resumes a release cut short by a crash.
 */
export async function queueAllPending(deps: EngineDeps, batchId: string): Promise<void> {
  while ((await deps.store.queuePendingItems(batchId, QUEUE_CHUNKS)) > 0) {
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

async function scanFile(
  deps: EngineDeps,
  batch: BatchRecord,
  ctx: LineContext,
): Promise<IngestState> {
  const state: IngestState = {
    errors: new BatchErrorList(),
    open: null,
    pending: [],
    customIds: new CustomIdIndex(),
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
      const { custom_id, model, upstream, embeddingInputs } = verdict.line;
      state.models.add(model);
      state.embeddingInputs += embeddingInputs;
      state.customIds.add(custom_id);
      addToChunk(state, upstream, line.lineNo, line.start, line.start + line.bytes);
      if (state.pending.length >= INSERT_CHUNKS) await flush(deps, batch, state);
    }
    closeChunk(state);
    await flush(deps, batch, state);
  } finally {
    stream.destroy();
  }
  if (state.customIds.hasCandidates) await findDuplicates(deps, batch, ctx, state);
  return state;
}

/** Extends the open chunk with a line, or starts a new one (new upstream, or the open one full). */
function addToChunk(
  state: IngestState,
  upstream: string,
  lineNo: number,
  start: number,
  end: number,
): void {
  const open = state.open;
  if (
    open &&
    open.upstream === upstream &&
    open.offsets.length < CHUNK_MAX_LINES &&
    end - open.byte_start <= CHUNK_MAX_BYTES
  ) {
    (open.offsets as number[]).push(start - open.byte_start);
    open.byte_end = end;
    return;
  }
  closeChunk(state);
  state.open = { upstream, first_line: lineNo, byte_start: start, byte_end: end, offsets: [0] };
}

function closeChunk(state: IngestState): void {
  if (state.open) state.pending.push(state.open);
  state.open = null;
}

/** Stores finished chunks (the batch has not started: they stay pending). */
async function flush(deps: EngineDeps, batch: BatchRecord, state: IngestState): Promise<void> {
  if (state.pending.length === 0) return;
  await deps.store.insertChunks(batch.id, deadlineBucketMs(batch.expires_at_ms), state.pending);
  state.pending = [];
}

/**
 * Second pass, only for files where a custom_id hash repeated: compares the candidates' ids
 * exactly and reports every line whose id appeared on an earlier line.
 */
async function findDuplicates(
  deps: EngineDeps,
  batch: BatchRecord,
  ctx: LineContext,
  state: IngestState,
): Promise<void> {
  const firstSeen = new Set<string>();
  const stream = deps.blobs.openRead(batch.input_file_id);
  try {
    for await (const line of readJsonlLines(stream, ctx.limits.maxLineBytes)) {
      if (line.text === null || line.text.trim() === '') continue;
      const verdict = validateLine(line.text, line.lineNo, ctx);
      if (!verdict.ok || !state.customIds.isCandidate(verdict.line.custom_id)) continue;
      if (firstSeen.has(verdict.line.custom_id)) state.errors.push(duplicateError(line.lineNo));
      else firstSeen.add(verdict.line.custom_id);
    }
  } finally {
    stream.destroy();
  }
}

function duplicateError(line: number): BatchError {
  return {
    code: 'duplicate_custom_id',
    message:
      'The custom_id for this request is a duplicate of another request. The custom_id parameter must be unique for each request in a batch.',
    param: 'custom_id',
    line,
  };
}

/**
 * Scheduling deadline of a batch's items: its expiry rounded down to the minute, so batches
 * whose deadlines fall in the same minute count as equal and share the upstream round-robin.
 */
export function deadlineBucketMs(expiresAtMs: number): number {
  return Math.floor(expiresAtMs / DEADLINE_BUCKET_MS) * DEADLINE_BUCKET_MS;
}

/** File-level errors, reported after the per-line ones. */
function fileErrors(deps: EngineDeps, state: IngestState): BatchError[] {
  const { maxLines, maxEmbeddingInputs } = deps.options.limits;
  const errors: BatchError[] = [];
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
