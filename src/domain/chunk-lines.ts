import { hasBit } from '../lib/bitmap.ts';

/** Where a chunk's lines are in the input file. */
export interface ChunkSpan {
  byte_start: number;
  byte_end: number;
  /** Start of each line, relative to `byte_start`. */
  offsets: Uint32Array;
}

/** Most lines in one chunk: a claim, a lease and a done map cover this many lines at once. */
export const CHUNK_MAX_LINES = 128;
/** Most input bytes in one chunk (a single larger line gets a chunk of its own). */
export const CHUNK_MAX_BYTES = 1_048_576;

/**
 * Absolute byte range of line `index`. A range may end with the line's terminator and blank
 * lines that followed it: JSON allows the whitespace, so the text parses as the line alone.
 */
export function lineRange(span: ChunkSpan, index: number): [start: number, end: number] {
  const start = span.byte_start + (span.offsets[index] ?? 0);
  const next = span.offsets[index + 1];
  return [start, next === undefined ? span.byte_end : span.byte_start + next];
}

/** Indexes of the lines of `span` whose bit in `done` is clear. */
export function undoneLines(span: ChunkSpan, done: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < span.offsets.length; i++) if (!hasBit(done, i)) out.push(i);
  return out;
}

/** Packs line offsets for storage (4 bytes each, little-endian). */
export function packOffsets(offsets: readonly number[] | Uint32Array): Uint8Array {
  const packed = new Uint8Array(offsets.length * 4);
  const view = new DataView(packed.buffer);
  offsets.forEach((o, i) => view.setUint32(i * 4, o, true));
  return packed;
}

export function unpackOffsets(packed: Uint8Array): Uint32Array {
  const view = new DataView(packed.buffer, packed.byteOffset, packed.byteLength);
  const out = new Uint32Array(packed.byteLength / 4);
  for (let i = 0; i < out.length; i++) out[i] = view.getUint32(i * 4, true);
  return out;
}
