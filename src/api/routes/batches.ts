import { Hono } from 'hono';
import { batchListQuerySchema } from '../../protocol/batch.ts';
import { toListPage } from '../../protocol/list-page.ts';
import { badRequest, batchNotFound } from '../../domain/app-error.ts';
import { toBatchObject } from '../../domain/batch-view.ts';
import { parseCreateBatchParams } from '../../domain/create-batch-params.ts';
import { newBatchId } from '../../domain/ids.ts';
import { emptyUsage, type BatchRecord } from '../../domain/records.ts';
import type { ApiDeps, ApiEnv } from '../api-deps.ts';
import { cancelBatch } from '../batch-actions.ts';
import { parseQuery } from '../parse-query.ts';
import { readJsonBody } from '../read-json-body.ts';

/** /v1/batches: create, list (newest first), retrieve, cancel. */
export function batchesRoutes(deps: ApiDeps): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();

  app.post('/', async (c) => {
    const { value } = await readJsonBody(c.req.raw, deps.limits.maxJsonBodyBytes, deps.bodies);
    const params = parseCreateBatchParams(value);
    const project = c.get('project');
    await deps.quotas.checkNewBatch(project);
    // A file of another purpose is refused now; a missing one fails the batch while validating
    // (OpenAI's newest observed behaviour, spec §4.1.3).
    const file = await deps.store.getFile(project, params.input_file_id);
    if (file && file.purpose !== 'batch') {
      throw badRequest(
        `Invalid 'input_file_id': file ${file.id} has purpose '${file.purpose}'; batch input files must be uploaded with purpose 'batch'.`,
        { param: 'input_file_id', wireCode: 'invalid_value' },
      );
    }
    const nowMs = deps.clock.nowMs();
    const batch = newBatchRecord(params, project, nowMs);
    await deps.store.insertBatch(batch);
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

  app.post('/:id/cancel', async (c) => {
    const batch = await cancelBatch(deps, c.get('project'), c.req.param('id'), c.get('requestId'));
    return c.json(toBatchObject(batch));
  });

  return app;
}

function newBatchRecord(
  params: ReturnType<typeof parseCreateBatchParams>,
  project: string,
  nowMs: number,
): BatchRecord {
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
  };
}
