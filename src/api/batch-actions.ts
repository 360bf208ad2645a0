import { once } from 'node:events';
import { Readable } from 'node:stream';
import { AppError, badRequest, batchNotFound } from '../domain/app-error.ts';
import { cancelEffect } from '../domain/batch-state.ts';
import type { BatchRecord, FileRecord } from '../domain/records.ts';
import { DOWNLOADABLE_PURPOSES } from '../protocol/file.ts';
import type { ApiDeps } from './api-deps.ts';

/**
 * Cancels batch `id` of `project` (the /v1 route and the dashboard share it): the batch moves to
 * `cancelling`, its unsent lines are dropped at once, and one `batch.cancel` line is logged.
 */
export async function cancelBatch(
  deps: ApiDeps,
  project: string,
  id: string,
  requestId: string,
): Promise<BatchRecord> {
  const batch = await deps.store.requestCancel(project, id, deps.clock.nowMs());
  if (!batch) throw batchNotFound(id);
  if (cancelEffect(batch.status) === 'conflict') {
    throw new AppError('conflict', `Cannot cancel a batch with status '${batch.status}'.`);
  }
  deps.logger.info(
    { event: 'batch.cancel', request_id: requestId, project, batch_id: id, status: batch.status },
    'batch cancel requested',
  );
  if (batch.status === 'cancelling') deps.engine.cancelled(batch.id);
  else deps.engine.notify();
  return batch;
}

/** A file's bytes as a download (the /v1 route and the dashboard share it). */
export async function fileDownload(deps: ApiDeps, file: FileRecord): Promise<Response> {
  if (!(DOWNLOADABLE_PURPOSES as readonly string[]).includes(file.purpose))
    throw badRequest(`Not allowed to download files of purpose: ${file.purpose}`);
  const content = deps.blobs.openRead(file.id);
  // The storage answers before the status line is sent: one that cannot be reached (S3 down)
  // is a 503 in OpenAI's envelope rather than a 200 whose body breaks off.
  await once(content, 'readable');
  const stream = Readable.toWeb(content) as ReadableStream;
  // Bytes, never JSON: the SDK's files.content() hands users the raw Response.
  return new Response(stream, {
    status: 200,
    headers: {
      'content-type': 'application/octet-stream',
      'content-length': String(file.bytes),
      'content-disposition': `attachment; filename*=UTF-8''${encodeURIComponent(file.filename)}`,
    },
  });
}
