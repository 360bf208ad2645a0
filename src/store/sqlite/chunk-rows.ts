import type { Database, Statement } from 'better-sqlite3';
import { lineRange, packOffsets, unpackOffsets } from '../../domain/chunk-lines.ts';
import type { ChunkState, UsageTotals } from '../../domain/records.ts';
import { emptyUsage } from '../../domain/records.ts';
import { bitmapOf } from '../../lib/bitmap.ts';

/** A `chunks` row as SQLite returns it. */
export interface ChunkRow {
  chunk_id: number;
  batch_id: string;
  upstream: string;
  deadline_ms: number;
  first_line: number;
  line_count: number;
  byte_start: number;
  byte_end: number;
  offsets: Buffer;
  state: ChunkState;
  attempts: number;
  lease_gen: number;
  lease_losses: number;
  unmarked_losses: number;
  done: Buffer | null;
  sent: Buffer | null;
  last_error: string | null;
}

/** A chunk loaded for changes inside one transaction: its maps decoded and writable. */
export interface LoadedChunk extends Omit<ChunkRow, 'offsets' | 'done' | 'sent'> {
  offsets: Uint32Array;
  done: Uint8Array;
  sent: Uint8Array;
}

export function loadChunk(row: ChunkRow): LoadedChunk {
  return {
    ...row,
    offsets: unpackOffsets(row.offsets),
    done: bitmapOf(row.done, row.line_count),
    sent: bitmapOf(row.sent, row.line_count),
  };
}

/** The offsets of a chunk that holds one line. */
export const SINGLE_LINE_OFFSETS = packOffsets([0]);

/** Counter changes of one batch, summed over a transaction and written once. */
export interface BatchDelta {
  completed: number;
  failed: number;
  expired: number;
  usage: UsageTotals;
}

export function deltaFor(deltas: Map<string, BatchDelta>, batchId: string): BatchDelta {
  let d = deltas.get(batchId);
  if (!d) {
    d = { completed: 0, failed: 0, expired: 0, usage: emptyUsage() };
    deltas.set(batchId, d);
  }
  return d;
}

/** The statements every chunk write shares, prepared once. */
export class ChunkStatements {
  readonly byId: Statement;
  readonly insertSingle: Statement;
  readonly batchDelta: Statement;

  constructor(db: Database) {
    this.byId = db.prepare(`SELECT * FROM chunks WHERE chunk_id = ?`);
    this.insertSingle = db.prepare(`
      INSERT INTO chunks (batch_id, upstream, deadline_ms, first_line, line_count, byte_start,
        byte_end, offsets, state, not_before_ms, attempts, lease_losses, last_error)
      VALUES (@batch_id, @upstream, @deadline_ms, @first_line, 1, @byte_start, @byte_end,
        @offsets, @state, @not_before_ms, @attempts, @lease_losses, @last_error)`);
    this.batchDelta = db.prepare(`
      UPDATE batches SET completed = completed + @completed, failed = failed + @failed,
        expired_lines = expired_lines + @expired,
        input_tokens = input_tokens + @input_tokens, cached_tokens = cached_tokens + @cached_tokens,
        output_tokens = output_tokens + @output_tokens,
        reasoning_tokens = reasoning_tokens + @reasoning_tokens,
        total_tokens = total_tokens + @total_tokens
      WHERE id = @id`);
  }

  load(chunkId: number): LoadedChunk | null {
    const row = this.byId.get(chunkId) as ChunkRow | undefined;
    return row ? loadChunk(row) : null;
  }

  /** Moves line `index` of `chunk` into a chunk of its own (a retry, a suspect, a poison line). */
  splitLine(
    chunk: LoadedChunk,
    index: number,
    line: {
      state: 'queued' | 'failed';
      not_before_ms: number;
      attempts: number;
      lease_losses: number;
      last_error: string | null;
    },
  ): void {
    const [start, end] = lineRange(chunk, index);
    this.insertSingle.run({
      batch_id: chunk.batch_id,
      upstream: chunk.upstream,
      deadline_ms: chunk.deadline_ms,
      first_line: chunk.first_line + index,
      byte_start: start,
      byte_end: end,
      offsets: SINGLE_LINE_OFFSETS,
      ...line,
    });
  }

  writeDeltas(deltas: Map<string, BatchDelta>): void {
    for (const [id, d] of deltas) {
      this.batchDelta.run({
        id,
        completed: d.completed,
        failed: d.failed,
        expired: d.expired,
        ...d.usage,
      });
    }
  }
}
