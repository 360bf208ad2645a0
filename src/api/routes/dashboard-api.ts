import { Hono, type Context } from 'hono';
import { batchNotFound, fileNotFound } from '../../domain/app-error.ts';
import { toBatchObject, toFileObject } from '../../domain/batch-view.ts';
import type { BatchRecord } from '../../domain/records.ts';
import type { ApiDeps, ApiEnv } from '../api-deps.ts';
import { cancelBatch, fileDownload } from '../batch-actions.ts';
import { groupErrorLines } from '../error-groups.ts';

const LIST_LIMIT = 200;
const ERROR_LINE_BYTES = 8 * 1024 * 1024;

type Ctx = Context<ApiEnv>;

/** The project the caller may see, or null: an admin key (or open mode) sees every project. */
const scope = (c: Ctx): string | null => (c.get('role') === 'admin' ? null : c.get('project'));

/**
 * The dashboard's data, under /dashboard/api (same auth as /v1): batches with live rate, ETA and
 * cost, a batch's errors grouped by code, cancel, downloads, files and upstream state. A key
 * sees its own project; an admin key sees every project.
 */
export function dashboardApiRoutes(deps: ApiDeps): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  const find = async (c: Ctx): Promise<BatchRecord> => {
    const id = c.req.param('id') ?? '';
    const project = scope(c);
    const batch =
      project === null ? await deps.store.getBatchById(id) : await deps.store.getBatch(project, id);
    if (!batch) throw batchNotFound(id);
    return batch;
  };

  app.get('/session', (c) =>
    c.json({ project: c.get('project'), role: c.get('role'), sees_all: scope(c) === null }),
  );
  app.get('/batches', async (c) => {
    const batches = await deps.store.recentBatches(scope(c), LIST_LIMIT);
    return c.json({ data: await Promise.all(batches.map((b) => batchView(deps, b))) });
  });
  app.get('/batches/:id', async (c) => c.json(await batchView(deps, await find(c))));
  app.get('/batches/:id/errors', async (c) => {
    const batch = await find(c);
    const validation = batch.errors ?? [];
    if (!batch.error_file_id)
      return c.json({ validation, groups: [], complete: true, file_id: null });
    const read = await groupErrorLines(deps.blobs.openRead(batch.error_file_id), ERROR_LINE_BYTES);
    return c.json({ validation, ...read, file_id: batch.error_file_id });
  });
  app.post('/batches/:id/cancel', async (c) => {
    const batch = await find(c);
    const cancelled = await cancelBatch(deps, batch.project, batch.id, c.get('requestId'));
    return c.json(await batchView(deps, cancelled));
  });
  app.get('/files', async (c) => {
    const files = await deps.store.recentFiles(scope(c), LIST_LIMIT);
    return c.json({ data: files.map((f) => ({ ...toFileObject(f), project: f.project })) });
  });
  app.get('/files/:id/content', async (c) => {
    const id = c.req.param('id');
    const project = scope(c);
    const file = await fileFor(deps, project, id);
    if (!file) throw fileNotFound(id);
    return fileDownload(deps, file);
  });
  app.get('/upstreams', (c) => {
    const status = deps.engine.upstreamStatus();
    // Limiter keys are model names and counters sum every project's traffic (issue 14).
    const upstreams =
      scope(c) === null
        ? status
        : status.map((u) => ({ upstream: u.upstream, concurrencyLimit: u.concurrencyLimit }));
    return c.json({ upstreams });
  });
  return app;
}

async function fileFor(deps: ApiDeps, project: string | null, id: string) {
  if (project !== null) return deps.store.getFile(project, id);
  return deps.store.getFileById(id);
}

/** A batch as the dashboard shows it: OpenAI's object plus project, rate, ETA and cost. */
async function batchView(deps: ApiDeps, b: BatchRecord) {
  const rate = b.status === 'in_progress' ? deps.engine.batchThroughput(b.id) : 0;
  const remaining = Math.max(0, b.total - b.completed - b.failed);
  return {
    ...toBatchObject(b),
    project: b.project,
    lines_per_second: rate,
    eta_seconds: rate > 0 ? Math.ceil(remaining / rate) : null,
    // `cost` is the server's own (charged as lines ran); this is the public price table's view.
    cost_estimate: b.model === null ? null : await deps.costOf(b.model, b.usage),
  };
}
