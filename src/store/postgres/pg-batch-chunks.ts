import type pg from 'pg';
import { packOffsets, unpackOffsets } from '../../domain/chunk-lines.ts';
import { bitmapOf } from '../../lib/bitmap.ts';
import type { Store } from '../store.ts';
import { bytea, inTransaction } from './pg-pool.ts';

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

/** A batch's chunks as its lifecycle sees them, on PostgreSQL (see the SQLite twin). */
export function createPgBatchChunks(pool: pg.Pool): BatchChunkOps {
  const exists = async (sql: string, params: unknown[]) =>
    ((await pool.query(sql, params)).rowCount ?? 0) > 0;
  return {
    resetIngest: async (batchId) => {
      await pool.query(`DELETE FROM chunks WHERE batch_id = $1`, [batchId]);
    },
    insertChunks: async (batchId, deadlineMs, chunks) => {
      if (chunks.length === 0) return;
      await pool.query(
        `INSERT INTO chunks (batch_id, upstream, deadline_ms, first_line, line_count, byte_start,
           byte_end, offsets, state)
         SELECT $1, upstream, $2, first_line, line_count, byte_start, byte_end, offsets, 'pending'
         FROM unnest($3::text[], $4::bigint[], $5::int[], $6::bigint[], $7::bigint[], $8::bytea[],
           $9::int[]) AS v(upstream, first_line, line_count, byte_start, byte_end, offsets, ord)
         ORDER BY ord`,
        [
          batchId,
          deadlineMs,
          chunks.map((c) => c.upstream),
          chunks.map((c) => c.first_line),
          chunks.map((c) => c.offsets.length),
          chunks.map((c) => c.byte_start),
          chunks.map((c) => c.byte_end),
          chunks.map((c) => bytea(packOffsets(c.offsets))),
          chunks.map((_, i) => i),
        ],
      );
    },
    queuePendingItems: async (batchId, limit) =>
      (
        await pool.query(
          `UPDATE chunks SET state = 'queued' WHERE chunk_id IN (SELECT chunk_id FROM chunks
             WHERE batch_id = $1 AND state = 'pending' ORDER BY chunk_id LIMIT $2
             FOR UPDATE SKIP LOCKED)`,
          [batchId, limit],
        )
      ).rowCount ?? 0,
    hasPendingItems: async (batchId) =>
      exists(`SELECT 1 FROM chunks WHERE batch_id = $1 AND state = 'pending' LIMIT 1`, [batchId]),
    stopUnstartedItems: async (batchId, state) =>
      (
        await pool.query(
          `UPDATE chunks SET state = $1 WHERE batch_id = $2 AND state IN ('pending', 'queued')`,
          [state, batchId],
        )
      ).rowCount ?? 0,
    hasUnfinishedItems: async (batchId) =>
      exists(
        `SELECT 1 FROM chunks WHERE batch_id = $1 AND state IN ('pending', 'queued', 'leased', 'native') LIMIT 1`,
        [batchId],
      ),
    spoolLengths: async (batchId) => {
      const { rows } = await pool.query<{ output_bytes: number; error_bytes: number }>(
        `SELECT output_bytes, error_bytes FROM batches WHERE id = $1`,
        [batchId],
      );
      return rows[0] ?? { output_bytes: 0, error_bytes: 0 };
    },
    hasExpiredLines: async (batchId) =>
      exists(
        `SELECT 1 FROM batches WHERE id = $1 AND (expired_lines > 0
           OR EXISTS (SELECT 1 FROM chunks WHERE batch_id = $1 AND state = 'expired'))`,
        [batchId],
      ),
    unrunChunks: async (batchId, afterChunkId, limit) => {
      const { rows } = await pool.query<UnrunRow>(
        `SELECT chunk_id, state, line_count, byte_start, byte_end, offsets, done, last_error
         FROM chunks WHERE batch_id = $1 AND state IN ('cancelled', 'expired', 'failed')
           AND chunk_id > $2
         ORDER BY chunk_id LIMIT $3`,
        [batchId, afterChunkId, limit],
      );
      return rows.map((row) => ({
        chunk_id: row.chunk_id,
        state: row.state,
        byte_start: row.byte_start,
        byte_end: row.byte_end,
        offsets: unpackOffsets(row.offsets),
        done: bitmapOf(row.done, row.line_count),
        last_error: row.last_error,
      }));
    },
    reserveFileIds: async (batchId, ids) =>
      inTransaction(pool, async (tx) => {
        const { rows } = await tx.query<{ output: string | null; error: string | null }>(
          `SELECT reserved_output_file_id AS output, reserved_error_file_id AS error
           FROM batches WHERE id = $1 FOR UPDATE`,
          [batchId],
        );
        const held = rows[0];
        if (held?.output && held.error) return { output: held.output, error: held.error };
        await tx.query(
          `UPDATE batches SET reserved_output_file_id = $1, reserved_error_file_id = $2 WHERE id = $3`,
          [ids.output, ids.error, batchId],
        );
        return ids;
      }),
  };
}
