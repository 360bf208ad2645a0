import type pg from 'pg';
import type { BatchExecution } from '../../domain/batch-execution.ts';
import type { ChunkRow, LoadedChunk } from '../chunk-plan.ts';
import { loadChunk } from '../chunk-plan.ts';
import {
  addExecutionCounts,
  BACKLOG_COLUMNS,
  handLines,
  keysByChunk,
  rowToNativeChunk,
  rowToSub,
  SUB_COLUMNS,
  takeBackLines,
  undoneCount,
  type NativeSubRow,
} from '../native-plan.ts';
import type { NativeStore } from '../native-store.ts';
import { bytea, inTransaction, type Queryable } from './pg-pool.ts';

/** The native runner's rows on PostgreSQL (see NativeStore and the SQLite twin). */
export function createPgNativeRows(pool: pg.Pool): NativeStore {
  const lock = async (tx: Queryable, chunkId: number): Promise<LoadedChunk | null> => {
    const { rows } = await tx.query<ChunkRow>(
      `SELECT * FROM chunks WHERE chunk_id = $1 FOR UPDATE`,
      [chunkId],
    );
    return rows[0] ? loadChunk(rows[0]) : null;
  };
  const writeHanded = async (tx: Queryable, c: LoadedChunk): Promise<void> => {
    await tx.query(`UPDATE chunks SET state = 'native', sent = $1 WHERE chunk_id = $2`, [
      bytea(c.sent),
      c.chunk_id,
    ]);
  };
  const subByMarker = async (tx: Queryable, marker: string) =>
    (
      await tx.query<NativeSubRow>(
        `SELECT ${SUB_COLUMNS} FROM native_subs WHERE marker = $1 FOR UPDATE`,
        [marker],
      )
    ).rows[0];
  return {
    setExecution: async (batchId, value) => {
      await pool.query(`UPDATE batches SET execution = $1 WHERE id = $2`, [
        JSON.stringify(value),
        batchId,
      ]);
    },
    backlog: async (queue, limit) =>
      (
        await pool.query(
          `SELECT ${BACKLOG_COLUMNS} FROM chunks c JOIN batches b ON b.id = c.batch_id
           WHERE c.upstream = $1 AND c.state IN ('queued', 'native') AND b.status = 'in_progress'
           ORDER BY c.deadline_ms, c.first_line, c.chunk_id LIMIT $2`,
          [queue, limit],
        )
      ).rows.map((r) => rowToNativeChunk(r as Parameters<typeof rowToNativeChunk>[0])),
    insertSub: (sub, nowMs) =>
      inTransaction(pool, async (tx) => {
        const chunks: LoadedChunk[] = [];
        for (const [chunkId, indexes] of [...keysByChunk(sub.keys)].sort((a, b) => a[0] - b[0])) {
          const chunk = await lock(tx, chunkId);
          // Nothing is written before every line is checked: returning commits only the reads.
          if (!chunk || !handLines(chunk, indexes)) return false;
          chunks.push(chunk);
        }
        for (const c of chunks) await writeHanded(tx, c);
        await tx.query(
          `INSERT INTO native_subs (${SUB_COLUMNS}) VALUES ($1, $2, $3, $4, 'intent', $5, $6, $7,
           NULL, $10, NULL, $8, $9, 0, FALSE, NULL, 0, 0)`,
          [
            sub.marker,
            sub.batch_id,
            sub.upstream,
            sub.model,
            JSON.stringify(sub.keys),
            sub.tokens,
            sub.bytes,
            sub.created_at_ms,
            nowMs,
            sub.upstream_input_file_id,
          ],
        );
        return true;
      }),
    getSub: async (marker) => {
      const { rows } = await pool.query<NativeSubRow>(
        `SELECT ${SUB_COLUMNS} FROM native_subs WHERE marker = $1`,
        [marker],
      );
      return rows[0] ? rowToSub(rows[0]) : null;
    },
    openSubs: async (upstream) =>
      (
        await pool.query<NativeSubRow>(
          `SELECT ${SUB_COLUMNS} FROM native_subs
           WHERE upstream = $1 AND state IN ('intent', 'submitted', 'ended') ORDER BY seq`,
          [upstream],
        )
      ).rows.map(rowToSub),
    updateSub: async (marker, patch) => {
      const entries = Object.entries(patch);
      if (entries.length === 0) return;
      const set = entries.map(([k], i) => `${k} = $${i + 2}`).join(', ');
      await pool.query(`UPDATE native_subs SET ${set} WHERE marker = $1`, [
        marker,
        ...entries.map(([, v]) => v),
      ]);
    },
    releaseSub: (marker, state) =>
      inTransaction(pool, async (tx) => {
        const row = await subByMarker(tx, marker);
        if (!row || row.state === 'released' || row.state === 'merged') return;
        for (const [chunkId, indexes] of [...keysByChunk(rowToSub(row).keys)].sort(
          (a, b) => a[0] - b[0],
        )) {
          const chunk = await lock(tx, chunkId);
          if (!chunk || chunk.state !== 'native') continue;
          takeBackLines(chunk, indexes);
          await writeHanded(tx, chunk);
        }
        await tx.query(`UPDATE native_subs SET state = $2 WHERE marker = $1`, [marker, state]);
      }),
    moveNativeLines: (batchId, queue, target) =>
      inTransaction(pool, async (tx) => {
        const { rows } = await tx.query<ChunkRow>(
          `SELECT * FROM chunks WHERE batch_id = $1 AND upstream = $2
             AND state IN ('queued', 'native') ORDER BY chunk_id FOR UPDATE`,
          [batchId, queue],
        );
        let lines = 0;
        for (const row of rows) lines += undoneCount(loadChunk(row));
        if ('upstream' in target)
          await tx.query(
            `UPDATE chunks SET upstream = $1, state = 'queued', sent = NULL
             WHERE batch_id = $2 AND upstream = $3 AND state IN ('queued', 'native')`,
            [target.upstream, batchId, queue],
          );
        else
          await tx.query(
            `UPDATE chunks SET state = $1, sent = NULL
             WHERE batch_id = $2 AND upstream = $3 AND state IN ('queued', 'native')`,
            [target.stop, batchId, queue],
          );
        return lines;
      }),
    countExecution: (batchId, add) =>
      inTransaction(pool, async (tx) => {
        const { rows } = await tx.query<{ execution: string | null }>(
          `SELECT execution FROM batches WHERE id = $1 FOR UPDATE`,
          [batchId],
        );
        const current = rows[0]?.execution
          ? (JSON.parse(rows[0].execution) as BatchExecution)
          : null;
        await tx.query(`UPDATE batches SET execution = $1 WHERE id = $2`, [
          JSON.stringify(addExecutionCounts(current, add)),
          batchId,
        ]);
      }),
  };
}
