import { once } from 'node:events';
import { AppError, badRequest } from '../domain/app-error.ts';
import { parseCompletionWindowMs } from '../domain/completion-window.ts';
import { invalidType } from '../domain/create-batch-params.ts';
import { newFileId } from '../domain/ids.ts';
import type { BatchRecord, FileRecord } from '../domain/records.ts';
import { readJsonlLines } from '../lib/jsonl-lines.ts';
import type { BlobStore } from '../store/blobs/blob-store.ts';
import type { ApiDeps } from './api-deps.ts';

/** Lines of output and input files are read up to this size (OpenAI's per-line limits are far below). */
const MAX_LINE_BYTES = 64 * 1024 * 1024;
const RETRYABLE = new Set(['completed', 'expired', 'cancelled']);

/** The body of POST /v1/batches/{id}/retry: everything optional. */
export interface RetryParams {
  completion_window: string | null;
  metadata: Record<string, string> | null;
}

export function parseRetryParams(value: unknown): RetryParams {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw badRequest('Expected a JSON object as the request body.');
  const body = value as Record<string, unknown>;
  for (const key of Object.keys(body))
    if (key !== 'completion_window' && key !== 'metadata')
      throw badRequest(`Unrecognized request argument supplied: ${key}`);
  const window = body.completion_window ?? null;
  if (window !== null && typeof window !== 'string') throw invalidType('completion_window', window);
  if (window !== null) parseCompletionWindowMs(window);
  const metadata = body.metadata ?? null;
  if (metadata !== null && (typeof metadata !== 'object' || Array.isArray(metadata)))
    throw invalidType('metadata', metadata, 'an object');
  return { completion_window: window, metadata: metadata as Record<string, string> | null };
}

/**
 * Writes a new input file holding exactly the lines of `batch` that ended in its error file
 * (failed, expired, cancelled), read from its input file in input order. Returns the file, not
 * yet registered, and how many lines it holds.
 */
export async function writeRetryInput(
  deps: ApiDeps,
  batch: BatchRecord,
  expiresAfterSeconds: number,
): Promise<FileRecord> {
  checkRetryable(batch);
  const errorFile = await deps.store.getFile(batch.project, batch.error_file_id ?? '');
  if (!errorFile)
    throw conflict(`The error file of batch ${batch.id} was deleted; it cannot be retried.`);
  if ((await deps.blobs.size(batch.input_file_id)) === null)
    throw conflict(`The input file of batch ${batch.id} was deleted; it cannot be retried.`);
  const wanted = await customIdsOf(deps.blobs, errorFile.id);
  const id = newFileId();
  const writer = await deps.blobs.createWriter(id);
  try {
    for await (const line of readJsonlLines(
      deps.blobs.openRead(batch.input_file_id),
      MAX_LINE_BYTES,
    )) {
      if (line.text === null || line.text.trim() === '') continue;
      const customId = (JSON.parse(line.text) as { custom_id?: unknown }).custom_id;
      if (typeof customId === 'string' && wanted.has(customId))
        if (!writer.stream.write(`${line.text}\n`)) await once(writer.stream, 'drain');
    }
    const nowMs = deps.clock.nowMs();
    return {
      id,
      project: batch.project,
      purpose: 'batch',
      filename: `${batch.id}_retry.jsonl`,
      bytes: await writer.commit(),
      created_at_ms: nowMs,
      expires_at_ms: nowMs + expiresAfterSeconds * 1000,
    };
  } catch (err) {
    await writer.abort();
    throw err;
  }
}

function checkRetryable(batch: BatchRecord): void {
  if (batch.status === 'failed')
    throw conflict(
      `Batch ${batch.id} failed validation, so none of its lines ran: fix its input file and create a new batch.`,
    );
  if (!RETRYABLE.has(batch.status))
    throw conflict(
      `Batch ${batch.id} is still ${batch.status}: only a completed, expired or cancelled batch can be retried.`,
    );
  if (batch.error_file_id === null)
    throw conflict(`Batch ${batch.id} has no failed, expired or cancelled lines to retry.`);
}

/** custom_ids of the lines of an output or error file. */
async function customIdsOf(blobs: BlobStore, fileId: string): Promise<Set<string>> {
  const ids = new Set<string>();
  for await (const line of readJsonlLines(blobs.openRead(fileId), MAX_LINE_BYTES)) {
    if (line.text === null || line.text.trim() === '') continue;
    const customId = (JSON.parse(line.text) as { custom_id?: unknown }).custom_id;
    if (typeof customId === 'string') ids.add(customId);
  }
  return ids;
}

function conflict(message: string): AppError {
  return new AppError('conflict', message);
}
