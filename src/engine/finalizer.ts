import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { undoneLines } from '../domain/chunk-lines.ts';
import { newFileId } from '../domain/ids.ts';
import type { BatchRecord, FileRecord, UnrunChunk } from '../domain/records.ts';
import type { FinalStatus } from '../store/store.ts';
import { readUndoneLines } from './chunk-lines-loader.ts';
import type { EngineDeps } from './engine-deps.ts';
import { errorLine, notRunLine } from './output-lines.ts';
import { notRunError } from './cost-control.ts';
import { spoolKey } from './result-recorder.ts';

const UNRUN_PAGE = 500;

/**
 * Ends a batch whose chunks are all finished. Its output and error files already exist as
 * spools, written while lines finished: the output spool is published as it is, and the error
 * spool after the lines that never ran (cancelled, expired, poisoned) are appended, read from
 * the input file. Files are durable before the one transaction that registers them and sets the
 * final status, so a batch is never `completed` without its files; their ids are reserved once,
 * so re-running after a crash publishes the same files again.
 */
export async function finalizeBatch(deps: EngineDeps, batch: BatchRecord): Promise<FinalStatus> {
  const { store, blobs, clock } = deps;
  const ids = await store.reserveFileIds(batch.id, { output: newFileId(), error: newFileId() });
  const committed = await store.spoolLengths(batch.id);
  const expired = await store.hasExpiredLines(batch.id);
  const status: FinalStatus =
    batch.status === 'cancelling' ? 'cancelled' : expired ? 'expired' : 'completed';
  const { outputBytes, errorBytes } = store.shared
    ? {
        outputBytes: await writeFile(
          deps,
          ids.output,
          answers(deps, batch.id, 'output', committed.output_bytes),
        ),
        errorBytes: await writeFile(
          deps,
          ids.error,
          concat<Buffer | string>(
            answers(deps, batch.id, 'error', committed.error_bytes),
            unrunLines(deps, batch),
          ),
        ),
      }
    : {
        outputBytes: await blobs.publishSpool(
          spoolKey(batch.id, 'output'),
          committed.output_bytes,
          ids.output,
          null,
        ),
        errorBytes: await blobs.publishSpool(
          spoolKey(batch.id, 'error'),
          committed.error_bytes,
          ids.error,
          unrunLines(deps, batch),
        ),
      };
  const nowMs = clock.nowMs();
  await store.completeBatch(
    batch.id,
    status,
    {
      output: fileRecord(deps, batch, ids.output, outputBytes, 'output', nowMs),
      error: fileRecord(deps, batch, ids.error, errorBytes, 'error', nowMs),
    },
    nowMs,
  );
  if (!store.shared) {
    await blobs.removeSpool(spoolKey(batch.id, 'output'));
    await blobs.removeSpool(spoolKey(batch.id, 'error'));
  }
  // Its input file was deleted (or expired) while the batch ran: the blob was kept until now.
  if (
    !(await store.getFile(batch.project, batch.input_file_id)) &&
    !(await store.fileInUse(batch.input_file_id))
  )
    await blobs.remove(batch.input_file_id);
  return status;
}

/** A shared store's answers (recorded by any process of the cluster), in commit order. */
function answers(deps: EngineDeps, batchId: string, file: 'output' | 'error', length: number) {
  return deps.store.readAnswers(batchId, file, 0, length);
}

async function* concat<T>(...parts: AsyncIterable<T>[]): AsyncGenerator<T> {
  for (const part of parts) yield* part;
}

/**
 * Writes `chunks` as blob `fileId` (durable and whole before this returns, replacing one left by
 * a finalize cut short); returns its size. Nothing is published when there is nothing to write.
 */
async function writeFile(
  deps: EngineDeps,
  fileId: string,
  chunks: AsyncIterable<Buffer | string>,
): Promise<number> {
  const writer = await deps.blobs.createWriter(fileId);
  let bytes = 0;
  async function* counted(): AsyncGenerator<Buffer> {
    for await (const chunk of chunks) {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      bytes += buf.length;
      yield buf;
    }
  }
  try {
    // A pipeline, not write/drain: a store that fails mid-way (S3 unreachable) destroys its
    // stream, which would otherwise never drain and leave this finalize waiting for ever.
    await pipeline(Readable.from(counted(), { objectMode: false }), writer.stream);
    if (bytes === 0) {
      await writer.abort();
      return 0;
    }
    return await writer.commit();
  } catch (err) {
    await writer.abort();
    throw err;
  }
}

/** Error lines for every line of the batch that ended without running, in input order. */
async function* unrunLines(deps: EngineDeps, batch: BatchRecord): AsyncGenerator<string> {
  let after = 0;
  for (;;) {
    const page = await deps.store.unrunChunks(batch.id, after, UNRUN_PAGE);
    if (page.length === 0) return;
    for (const chunk of page) yield* chunkLines(deps, batch, chunk);
    after = page[page.length - 1]?.chunk_id ?? after;
  }
}

async function* chunkLines(
  deps: EngineDeps,
  batch: BatchRecord,
  chunk: UnrunChunk,
): AsyncGenerator<string> {
  if (undoneLines(chunk, chunk.done).length === 0) return;
  const lines = await readUndoneLines(deps.blobs, batch.input_file_id, chunk, chunk.done);
  const nowMs = deps.clock.nowMs();
  for (const { text } of lines) {
    const customId = (JSON.parse(text) as { custom_id: string }).custom_id;
    const line =
      chunk.state === 'failed'
        ? errorLine(
            batch.id,
            customId,
            { code: 'internal_error', message: chunk.last_error ?? 'The request failed.' },
            nowMs,
          )
        : notRunLine(batch.id, customId, chunk.state, nowMs, notRunError(batch.stop_code));
    yield line.text;
  }
}

function fileRecord(
  deps: EngineDeps,
  batch: BatchRecord,
  id: string,
  bytes: number,
  kind: 'output' | 'error',
  nowMs: number,
): FileRecord | null {
  if (bytes === 0) return null; // an empty file is never created: its id stays null
  const expiresAfterS =
    batch.output_expires_after_seconds ?? deps.options.outputExpiresAfterSeconds;
  return {
    id,
    project: batch.project,
    purpose: 'batch_output',
    filename: `${batch.id}_${kind}.jsonl`,
    bytes,
    created_at_ms: nowMs,
    expires_at_ms: nowMs + expiresAfterS * 1000,
  };
}
