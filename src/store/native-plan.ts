import { unpackOffsets } from '../domain/chunk-lines.ts';
import { bitmapOf, countBits, hasBit, setBit } from '../lib/bitmap.ts';
import type { BatchExecution } from '../domain/batch-execution.ts';
import { emptyUsage } from '../domain/records.ts';
import { addUsage } from '../protocol/token-usage.ts';
import type { ExecutionCounts } from './native-store.ts';
import type { LoadedChunk } from './chunk-plan.ts';
import type {
  NativeChunk,
  NativeLineKey,
  NativeSubRecord,
  NativeSubState,
} from './native-store.ts';

/** Written once for both stores: how native rows are read and what their transactions decide. */

/** A `native_subs` row as a store returns it. */
export interface NativeSubRow {
  marker: string;
  batch_id: string;
  upstream: string;
  model: string;
  state: string;
  keys: string;
  tokens: number;
  bytes: number;
  upstream_batch_id: string | null;
  upstream_input_file_id: string | null;
  upstream_status: string | null;
  created_at_ms: number;
  next_poll_ms: number;
  polls: number;
  cancel_requested: number | boolean;
  last_error: string | null;
  upstream_completed: number;
  upstream_failed: number;
}

export function rowToSub(row: NativeSubRow): NativeSubRecord {
  return {
    ...row,
    state: row.state as NativeSubState,
    keys: JSON.parse(row.keys) as NativeLineKey[],
    cancel_requested: row.cancel_requested === true || row.cancel_requested === 1,
  };
}

/** The sub-batch's line indexes per chunk. */
export function keysByChunk(keys: readonly NativeLineKey[]): Map<number, number[]> {
  const byChunk = new Map<number, number[]>();
  for (const [chunkId, , index] of keys) {
    let list = byChunk.get(chunkId);
    if (!list) byChunk.set(chunkId, (list = []));
    list.push(index);
  }
  return byChunk;
}

/** Marks `indexes` of a chunk handed to a sub-batch; false when one is done or handed already. */
export function handLines(chunk: LoadedChunk, indexes: readonly number[]): boolean {
  if (chunk.state !== 'queued' && chunk.state !== 'native') return false;
  for (const i of indexes) if (hasBit(chunk.done, i) || hasBit(chunk.sent, i)) return false;
  for (const i of indexes) setBit(chunk.sent, i);
  return true;
}

/** Clears the handed marks of `indexes` (lines of a released sub-batch go back to the backlog). */
export function takeBackLines(chunk: LoadedChunk, indexes: readonly number[]): void {
  for (const i of indexes) {
    const byte = i >> 3;
    chunk.sent[byte] = (chunk.sent[byte] ?? 0) & ~(1 << (i & 7));
  }
}

/** Lines of a chunk neither done nor handed. */
export function freeLines(chunk: {
  offsets: Uint32Array;
  done: Uint8Array;
  sent: Uint8Array;
}): number[] {
  const free: number[] = [];
  for (let i = 0; i < chunk.offsets.length; i++)
    if (!hasBit(chunk.done, i) && !hasBit(chunk.sent, i)) free.push(i);
  return free;
}

export function undoneCount(chunk: { offsets: Uint32Array; done: Uint8Array }): number {
  return chunk.offsets.length - countBits(chunk.done, chunk.offsets.length);
}

/** A backlog row (chunk joined with its batch) as a NativeChunk. */
export function rowToNativeChunk(
  row: Omit<NativeChunk, 'offsets' | 'done' | 'sent'> & {
    line_count: number;
    offsets: Uint8Array;
    done: Uint8Array | null;
    sent: Uint8Array | null;
  },
): NativeChunk {
  const { line_count, offsets, done, sent, ...rest } = row;
  return {
    ...rest,
    offsets: unpackOffsets(offsets),
    done: bitmapOf(done, line_count),
    sent: bitmapOf(sent, line_count),
  };
}

/** The batch's execution with counters added. */
export function addExecutionCounts(
  current: BatchExecution | null,
  add: ExecutionCounts,
): BatchExecution {
  const base: BatchExecution = current ?? { mode: 'native', reason: '' };
  if (add.upstream_progress !== undefined) {
    const { upstream_progress: _old, ...rest } = base;
    return add.upstream_progress ? { ...rest, upstream_progress: add.upstream_progress } : rest;
  }
  const usage = { ...(base.native_usage ?? emptyUsage()) };
  if (add.native_usage) addUsage(usage, add.native_usage);
  return {
    ...base,
    native_lines: (base.native_lines ?? 0) + (add.native_lines ?? 0),
    native_usage: usage,
    fallback_lines: (base.fallback_lines ?? 0) + (add.fallback_lines ?? 0),
  };
}

export const SUB_COLUMNS = `marker, batch_id, upstream, model, state, keys, tokens, bytes,
  upstream_batch_id, upstream_input_file_id, upstream_status, created_at_ms, next_poll_ms, polls,
  cancel_requested, last_error, upstream_completed, upstream_failed`;

export const BACKLOG_COLUMNS = `c.chunk_id, c.lease_gen, c.batch_id, b.input_file_id, b.endpoint,
  c.deadline_ms, b.expires_at_ms, c.byte_start, c.byte_end, c.line_count, c.offsets, c.done, c.sent`;
