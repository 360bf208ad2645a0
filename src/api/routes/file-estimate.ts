import { Hono } from 'hono';
import { badRequest, fileNotFound } from '../../domain/app-error.ts';
import { parseCompletionWindowMs } from '../../domain/completion-window.ts';
import { isBatchEndpoint } from '../../protocol/endpoints.ts';
import type { ApiDeps, ApiEnv } from '../api-deps.ts';

/**
 * GET /v1/files/{file_id}/estimate?endpoint=…&completion_window=… (an extension, issue 13): the
 * file's requests, tokens (the admission tokenizer), cost at the standard and batch price, and
 * the time to run it at the upstreams' limits behind what is queued now. Nothing is created.
 */
export function fileEstimateRoutes(deps: ApiDeps): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  app.get('/:id/estimate', async (c) => {
    const id = c.req.param('id');
    const file = await deps.store.getFile(c.get('project'), id);
    if (!file) throw fileNotFound(id);
    if (file.purpose !== 'batch')
      throw badRequest(
        `File ${id} has purpose '${file.purpose}'; only batch input files are estimated.`,
        {
          param: 'file_id',
          wireCode: 'invalid_value',
        },
      );
    const endpoint = c.req.query('endpoint') ?? '/v1/chat/completions';
    if (!isBatchEndpoint(endpoint))
      throw badRequest(`Invalid value for 'endpoint': '${endpoint}' is not a batch endpoint.`, {
        param: 'endpoint',
        wireCode: 'invalid_value',
      });
    const completionWindow = c.req.query('completion_window') ?? '24h';
    const windowMs = parseCompletionWindowMs(completionWindow);
    const estimate = await deps.engine.estimate({ fileId: id, endpoint, completionWindow });
    return c.json({
      ...estimate,
      fits_completion_window:
        estimate.eta_seconds === null ? null : estimate.eta_seconds * 1000 <= windowMs,
    });
  });
  return app;
}
