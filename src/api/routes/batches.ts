import { Hono } from 'hono';
import { batchListQuerySchema } from '../../protocol/batch.ts';
import { batchResultsQuerySchema, parseResultsCursor } from '../../protocol/batch-results.ts';
import { toListPage } from '../../protocol/list-page.ts';
import { badRequest, batchNotFound } from '../../domain/app-error.ts';
import { toBatchObject } from '../../domain/batch-view.ts';
import { parseCompletionWindowMs } from '../../domain/completion-window.ts';
import {
  parseCreateBatchParams,
  type CreateBatchParams,
} from '../../domain/create-batch-params.ts';
import type { BatchEndpoint } from '../../protocol/endpoints.ts';
import { newBatchId } from '../../domain/ids.ts';
import { emptyUsage, type BatchRecord } from '../../domain/records.ts';
import type { ApiDeps, ApiEnv } from '../api-deps.ts';
import { parseRetryParams, writeRetryInput, type RetryParams } from '../batch-retry.ts';
import { IdempotencyKey } from '../idempotency.ts';
import { cancelBatch } from '../batch-actions.ts';
import { parseQuery } from '../parse-query.ts';
import { readJsonBody } from '../read-json-body.ts';

/** /v1/batches: create, list (newest first), retrieve, cancel, and retry (an extension). */
export function batchesRoutes(deps: ApiDeps): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();

  app.post('/', async (c) => {
    const { value } = await readJsonBody(c.req.raw, deps.limits.maxJsonBodyBytes, deps.bodies);
    const params = parseCreateBatchParams(value);
    const project = c.get('project');
    const nowMs = deps.clock.nowMs();
    const idem = IdempotencyKey.from(c.req.raw.headers, {
      store: deps.store,
      project,
      scope: 'batches',
      nowMs,
      body: value,
    });
    const heldId = await idem?.heldObjectId();
    if (heldId) return c.json(toBatchObject(await replayedBatch(deps, project, heldId)));
    if (!heldId) await deps.quotas.checkNewBatch(project);
    // A file of another purpose is refused now; a missing one fails the batch while validating
    // (OpenAI's newest observed behaviour, spec §4.1.3).
    const file = await deps.store.getFile(project, params.input_file_id);
    if (file && file.purpose !== 'batch') {
      throw badRequest(
        `Invalid 'input_file_id': file ${file.id} has purpose '${file.purpose}'; batch input files must be uploaded with purpose 'batch'.`,
        { param: 'input_file_id', wireCode: 'invalid_value' },
      );
    }
    const batch = newBatchRecord(params, project, nowMs);
    const held = await deps.store.insertBatch(batch, idem?.claim(batch.id));
    // Another request with the same key won the race: answer with its batch.
    if (held && idem)
      return c.json(toBatchObject(await replayedBatch(deps, project, idem.replayOf(held))));
    deps.logger.info(
      {
        event: 'batch.created',
        request_id: c.get('requestId'),
        project,
        batch_id: batch.id,
        input_file_id: batch.input_file_id,
        endpoint: batch.endpoint,
        completion_window: batch.completion_window,
      },
      'batch created',
    );
    deps.engine.notify();
    return c.json(toBatchObject(batch));
  });

  app.get('/', async (c) => {
    const query = parseQuery(batchListQuerySchema, c.req.query());
    const page = toListPage(await deps.store.listBatches(c.get('project'), query), query.limit);
    return c.json({ ...page, data: page.data.map(toBatchObject) });
  });

  app.get('/:id', async (c) => {
    const batch = await deps.store.getBatch(c.get('project'), c.req.param('id'));
    if (!batch) throw batchNotFound(c.req.param('id'));
    return c.json(toBatchObject(batch));
  });

  app.get('/:id/results', async (c) => {
    const query = parseQuery(batchResultsQuerySchema, c.req.query());
    const batch = await deps.store.getBatch(c.get('project'), c.req.param('id'));
    if (!batch) throw batchNotFound(c.req.param('id'));
    const cursor = parseResultsCursor(query.after);
    if (!cursor)
      throw badRequest(`Invalid 'after': not a cursor returned by this endpoint.`, {
        param: 'after',
        wireCode: 'invalid_value',
      });
    return c.json(await deps.engine.results(batch.id, cursor, query.limit));
  });

  app.post('/:id/cancel', async (c) => {
    const batch = await cancelBatch(deps, c.get('project'), c.req.param('id'), c.get('requestId'));
    return c.json(toBatchObject(batch));
  });

  app.post('/:id/retry', async (c) => {
    const { value } = await readJsonBody(c.req.raw, deps.limits.maxJsonBodyBytes, deps.bodies);
    const params = parseRetryParams(value);
    const [project, id, nowMs] = [c.get('project'), c.req.param('id'), deps.clock.nowMs()];
    const idem = IdempotencyKey.from(c.req.raw.headers, {
      store: deps.store,
      project,
      scope: 'retry',
      nowMs,
      body: { batch_id: id, request: value },
    });
    const heldId = await idem?.heldObjectId();
    if (heldId) return c.json(toBatchObject(await replayedBatch(deps, project, heldId)));
    const source = await deps.store.getBatch(project, id);
    if (!source) throw batchNotFound(id);
    const input = await writeRetryInput(deps, source, deps.retention.batchFileExpiresAfterSeconds);
    await deps.store.insertFile(input);
    const batch = newBatchRecord(retryBatchParams(source, params, input.id), project, nowMs);
    const held = await deps.store.insertBatch(batch, idem?.claim(batch.id));
    if (held && idem) {
      await deps.store.deleteFile(project, input.id);
      await deps.blobs.remove(input.id);
      return c.json(toBatchObject(await replayedBatch(deps, project, idem.replayOf(held))));
    }
    deps.engine.notify();
    return c.json(toBatchObject(batch));
  });

  return app;
}

/** The follow-up of `source`: same endpoint, window unless given, `metadata.retry_of` set. */
function retryBatchParams(
  source: BatchRecord,
  params: RetryParams,
  inputFileId: string,
): CreateBatchParams {
  const window = params.completion_window ?? source.completion_window;
  return {
    input_file_id: inputFileId,
    endpoint: source.endpoint as BatchEndpoint,
    completion_window: window,
    completionWindowMs: parseCompletionWindowMs(window),
    metadata: { ...source.metadata, ...params.metadata, retry_of: source.id },
    outputExpiresAfterSeconds: source.output_expires_after_seconds,
    // A retry keeps the source's caps (its lines are the ones that did not make it).
    maxCostUsd: source.max_cost_usd ?? null,
    maxErrorRate: source.max_error_rate ?? null,
  };
}

async function replayedBatch(deps: ApiDeps, project: string, id: string): Promise<BatchRecord> {
  const batch = await deps.store.getBatch(project, id);
  if (!batch) throw batchNotFound(id);
  return batch;
}

function newBatchRecord(params: CreateBatchParams, project: string, nowMs: number): BatchRecord {
  return {
    id: newBatchId(nowMs),
    project,
    endpoint: params.endpoint,
    input_file_id: params.input_file_id,
    completion_window: params.completion_window,
    status: 'validating',
    model: null,
    errors: null,
    output_file_id: null,
    error_file_id: null,
    created_at_ms: nowMs,
    in_progress_at_ms: null,
    expires_at_ms: nowMs + params.completionWindowMs,
    finalizing_at_ms: null,
    completed_at_ms: null,
    failed_at_ms: null,
    expired_at_ms: null,
    cancelling_at_ms: null,
    cancelled_at_ms: null,
    total: 0,
    completed: 0,
    failed: 0,
    usage: emptyUsage(),
    metadata: params.metadata,
    output_expires_after_seconds: params.outputExpiresAfterSeconds,
    ...(params.maxCostUsd !== null ? { max_cost_usd: params.maxCostUsd } : {}),
    ...(params.maxErrorRate !== null ? { max_error_rate: params.maxErrorRate } : {}),
  };
}
