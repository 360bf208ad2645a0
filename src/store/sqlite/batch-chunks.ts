import type { Database } from 'better-sqlite3';
import { packOffsets, unpackOffsets } from '../../domain/chunk-lines.ts';
import { bitmapOf } from '../../lib/bitmap.ts';
import type { Store } from '../store.ts';

type BatchChunkOps = Pick<
  Store,
  | 'resetIngest'
  | 'insertChunks'
  | 'queuePendingItems'
  | 'hasPendingItems'
  | 'stopUnstartedItems'
  | 'hasUnfinishedItems'
  | 'spoolLengths'
  | 'hasExpiredLines'
  | 'unrunChunks'
  | 'reserveFileIds'
>;

interface UnrunRow {
  chunk_id: number;
  state: 'cancelled' | 'expired' | 'failed';
  line_count: number;
  byte_start: number;
  byte_end: number;
  offsets: Buffer;
  done: Buffer | null;
  last_error: string | null;
}

/** A batch's chunks as its lifecycle sees them: ingest, release, stop, and what finalizing reads. */
export function createBatchChunks(db: Database): BatchChunkOps {
  const s = {
    reset: db.prepare(`DELETE FROM chunks WHERE batch_id = ?`),
    insert: db.prepare(`
      INSERT INTO chunks (batch_id, upstream, deadline_ms, first_line, line_count, byte_start,
        byte_end, offsets, state)
      VALUES (@batch_id, @upstream, @deadline_ms, @first_line, @line_count, @byte_start,
        @byte_end, @offsets, 'pending')`),
    queue: db.prepare(`
      UPDATE chunks SET state = 'queued' WHERE chunk_id IN
        (SELECT chunk_id FROM chunks WHERE batch_id = ? AND state = 'pending' LIMIT ?)`),
    // Probed every supervisor tick for each running batch.
    hasPending: db.prepare(`SELECT 1 FROM chunks WHERE batch_id = ? AND state = 'pending' LIMIT 1`),
    hasUnfinished: db.prepare(
      `SELECT 1 FROM chunks WHERE batch_id = ? AND state IN ('pending', 'queued', 'leased', 'native') LIMIT 1`,
    ),
    stop: db.prepare(
      `UPDATE chunks SET state = ? WHERE batch_id = ? AND state IN ('pending', 'queued')`,
    ),
    spools: db.prepare(`SELECT output_bytes, error_bytes FROM batches WHERE id = ?`),
    expired: db.prepare(`
      SELECT expired_lines > 0
        OR EXISTS (SELECT 1 FROM chunks WHERE batch_id = @id AND state = 'expired') AS expired
      FROM batches WHERE id = @id`),
    unrun: db.prepare(`
      SELECT chunk_id, state, line_count, byte_start, byte_end, offsets, done, last_error
      FROM chunks WHERE batch_id = ? AND state IN ('cancelled', 'expired', 'failed') AND chunk_id > ?
      ORDER BY chunk_id LIMIT ?`),
    reserved: db.prepare(
      `SELECT reserved_output_file_id AS output, reserved_error_file_id AS error FROM batches WHERE id = ?`,
    ),
    reserve: db.prepare(
      `UPDATE batches SET reserved_output_file_id = ?, reserved_error_file_id = ? WHERE id = ?`,
    ),
  };
  return {
    resetIngest: async (batchId) => {
      s.reset.run(batchId);
    },
    insertChunks: async (batchId, deadlineMs, chunks) => {
      db.transaction(() => {
        for (const c of chunks) {
          s.insert.run({
            batch_id: batchId,
            upstream: c.upstream,
            deadline_ms: deadlineMs,
            first_line: c.first_line,
            line_count: c.offsets.length,
            byte_start: c.byte_start,
            byte_end: c.byte_end,
            offsets: packOffsets(c.offsets),
          });
        }
      })();
    },
    queuePendingItems: async (batchId, limit) => s.queue.run(batchId, limit).changes,
    hasPendingItems: async (batchId) => s.hasPending.get(batchId) !== undefined,
    stopUnstartedItems: async (batchId, state) => s.stop.run(state, batchId).changes,
    // An existence probe, not a count: counting a big batch's chunks each tick adds up.
    hasUnfinishedItems: async (batchId) => s.hasUnfinished.get(batchId) !== undefined,
    spoolLengths: async (batchId) =>
      (s.spools.get(batchId) as { output_bytes: number; error_bytes: number } | undefined) ?? {
        output_bytes: 0,
        error_bytes: 0,
      },
    hasExpiredLines: async (batchId) =>
      (s.expired.get({ id: batchId }) as { expired: number } | undefined)?.expired === 1,
    unrunChunks: async (batchId, afterChunkId, limit) =>
      (s.unrun.all(batchId, afterChunkId, limit) as UnrunRow[]).map((row) => ({
        chunk_id: row.chunk_id,
        state: row.state,
        byte_start: row.byte_start,
        byte_end: row.byte_end,
        offsets: unpackOffsets(row.offsets),
        done: bitmapOf(row.done, row.line_count),
        last_error: row.last_error,
      })),
    reserveFileIds: async (batchId, ids) =>
      db.transaction(() => {
        const held = s.reserved.get(batchId) as { output: string | null; error: string | null };
        if (held.output !== null && held.error !== null)
          return { output: held.output, error: held.error };
        s.reserve.run(ids.output, ids.error, batchId);
        return ids;
      })(),
  };
}
