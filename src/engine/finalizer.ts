import { once } from 'node:events';
import type { BatchOutputLine } from '../protocol/batch.ts';
import { RawJson, toPythonJson } from '../lib/python-json.ts';
import { newBatchRequestId, newFileId } from '../domain/ids.ts';
import type { BatchRecord, FileRecord, FinishedItem } from '../domain/records.ts';
import type { BlobWriter } from '../store/blobs/blob-store.ts';
import type { FinalStatus } from '../store/store.ts';
import type { EngineDeps } from './engine-deps.ts';

const PAGE_SIZE = 1_000;

const EXPIRED_ERROR = {
  code: 'batch_expired',
  message: 'This request could not be executed before the completion window expired.',
};
const CANCELLED_ERROR = {
  code: 'batch_cancelled',
  message: 'This request could not be executed before the batch was cancelled.',
};

/** A lazily created output or error file. */
class LazyFile {
  writer: BlobWriter | null = null;
  readonly id = newFileId();
  lines = 0;
}

/**
 * Writes the output and error files (spec §5.2 routing) and ends the batch, in that order: the
 * files are durable before the one transaction that registers them and sets the final status,
 * so a batch is never `completed` without its files. Re-running after a crash starts over.
 */
export async function finalizeBatch(deps: EngineDeps, batch: BatchRecord): Promise<FinalStatus> {
  const { store, clock } = deps;
  const output = new LazyFile();
  const errors = new LazyFile();
  let sawExpired = false;
  try {
    for await (const item of store.finishedItems(batch.id, PAGE_SIZE)) {
      if (item.state === 'expired') sawExpired = true;
      const { line, isError } = toOutputLine(item, clock.nowMs());
      await writeLine(deps, isError ? errors : output, toPythonJson(line) + '\n');
    }
    const status: FinalStatus =
      batch.status === 'cancelling' ? 'cancelled' : sawExpired ? 'expired' : 'completed';
    const nowMs = clock.nowMs();
    const outputFile = await commit(deps, batch, output, 'output', nowMs);
    const errorFile = await commit(deps, batch, errors, 'error', nowMs);
    await store.completeBatch(batch.id, status, { output: outputFile, error: errorFile }, nowMs);
    return status;
  } catch (err) {
    await output.writer?.abort();
    await errors.writer?.abort();
    throw err;
  }
}

function toOutputLine(
  item: FinishedItem,
  nowMs: number,
): { line: BatchOutputLine; isError: boolean } {
  const base = { id: newBatchRequestId(nowMs), custom_id: item.custom_id };
  // Anything not run to an answer (expired, cancelled, or never started) is a not-executed line.
  if (item.state !== 'succeeded' && item.state !== 'failed') {
    const error = item.state === 'expired' ? EXPIRED_ERROR : CANCELLED_ERROR;
    return { line: { ...base, response: null, error }, isError: true };
  }
  if (item.status_code !== null) {
    const response = {
      status_code: item.status_code,
      request_id: item.request_id ?? '',
      body: parseBody(item.response_body),
    };
    return { line: { ...base, response, error: null }, isError: item.state !== 'succeeded' };
  }
  const error = {
    code: item.error_code ?? 'internal_error',
    message: item.error_message ?? 'The request failed.',
  };
  return { line: { ...base, response: null, error }, isError: true };
}

/** Recorded bodies are valid JSON (decide-outcome checks, or wraps a non-JSON error body). */
function parseBody(text: string | null): RawJson | null {
  return text === null ? null : new RawJson(text);
}

async function writeLine(deps: EngineDeps, file: LazyFile, text: string): Promise<void> {
  file.writer ??= await deps.blobs.createWriter(file.id);
  file.lines++;
  if (!file.writer.stream.write(text)) await once(file.writer.stream, 'drain');
}

async function commit(
  deps: EngineDeps,
  batch: BatchRecord,
  file: LazyFile,
  kind: 'output' | 'error',
  nowMs: number,
): Promise<FileRecord | null> {
  if (!file.writer) return null; // an empty file is never created: its id stays null
  const bytes = await file.writer.commit();
  const expiresAfterS =
    batch.output_expires_after_seconds ?? deps.options.outputExpiresAfterSeconds;
  return {
    id: file.id,
    project: batch.project,
    purpose: 'batch_output',
    filename: `${batch.id}_${kind}.jsonl`,
    bytes,
    created_at_ms: nowMs,
    expires_at_ms: nowMs + expiresAfterS * 1000,
  };
}
