import { lineRange } from '../domain/chunk-lines.ts';
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
  const bytes = await blobs.readRange(chunk.input_file_id, chunk.byte_start, chunk.byte_end);
  const items: ClaimedItem[] = [];
  for (let index = 0; index < chunk.offsets.length; index++) {
    if (hasBit(chunk.done, index)) continue;
    const [start, end] = lineRange(chunk, index);
    const text = bytes.toString('utf8', start - chunk.byte_start, end - chunk.byte_start);
    items.push(toItem(chunk, index, text));
  }
  return items;
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
