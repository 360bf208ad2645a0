import { lineRange, type ChunkSpan } from '../domain/chunk-lines.ts';
import { requestModel } from '../domain/line-validation.ts';
import type { ClaimedChunk, ClaimedItem } from '../domain/records.ts';
import { hasBit } from '../lib/bitmap.ts';
import type { BlobStore } from '../store/blobs/blob-store.ts';

/**
 * Reads a claimed chunk's lines from the input file (one read for the whole chunk) and turns
 * each line not yet done into a request ready to send. Ingest validated every line, so a line
 * is parsed once more here and its body re-serialised exactly as validation saw it.
 */
export async function loadChunkLines(
  blobs: BlobStore,
  chunk: ClaimedChunk,
): Promise<ClaimedItem[]> {
  const lines = await readUndoneLines(blobs, chunk.input_file_id, chunk, chunk.done);
  return lines.map(({ index, text }) => toItem(chunk, index, text));
}

/** The text of every line of `span` not marked in `done`, from one read of the input file. */
export async function readUndoneLines(
  blobs: BlobStore,
  fileId: string,
  span: ChunkSpan,
  done: Uint8Array,
): Promise<{ index: number; text: string }[]> {
  const bytes = await blobs.readRange(fileId, span.byte_start, span.byte_end);
  const lines: { index: number; text: string }[] = [];
  for (let index = 0; index < span.offsets.length; index++) {
    if (hasBit(done, index)) continue;
    const [start, end] = lineRange(span, index);
    lines.push({
      index,
      text: bytes.toString('utf8', start - span.byte_start, end - span.byte_start),
    });
  }
  return lines;
}

function toItem(chunk: ClaimedChunk, index: number, text: string): ClaimedItem {
  const line = JSON.parse(text) as { custom_id: string; body: Record<string, unknown> };
  const model = requestModel(chunk.endpoint, line.body);
  return {
    chunk_id: chunk.chunk_id,
    lease_gen: chunk.lease_gen,
    index,
    batch_id: chunk.batch_id,
    custom_id: line.custom_id,
    endpoint: chunk.endpoint,
    model: typeof model === 'string' ? model : '',
    body: JSON.stringify(line.body),
    attempts: chunk.attempts,
    suspect: chunk.suspect,
  };
}
