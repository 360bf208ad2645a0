import type { Database } from 'better-sqlite3';
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
import { statement } from './statement-cache.ts';

/** The native runner's rows on SQLite (see NativeStore). */
export function createSqliteNativeRows(db: Database): NativeStore {
  const load = (chunkId: number): LoadedChunk | null => {
    const row = statement(db, `SELECT * FROM chunks WHERE chunk_id = ?`).get(chunkId) as
      ChunkRow | undefined;
    return row ? loadChunk(row) : null;
  };
  const writeHanded = (c: LoadedChunk, state: string): void => {
    statement(db, `UPDATE chunks SET state = ?, sent = ? WHERE chunk_id = ?`).run(
      state,
      c.sent,
      c.chunk_id,
    );
  };
  const execution = (batchId: string): BatchExecution | null => {
    const row = statement(db, `SELECT execution FROM batches WHERE id = ?`).get(batchId) as
      { execution: string | null } | undefined;
    return row?.execution ? (JSON.parse(row.execution) as BatchExecution) : null;
  };
  const setExecution = (batchId: string, value: BatchExecution): void => {
    statement(db, `UPDATE batches SET execution = ? WHERE id = ?`).run(
      JSON.stringify(value),
      batchId,
    );
  };
  return {
    setExecution: async (batchId, value) => setExecution(batchId, value),
    backlog: async (queue, limit) =>
      (
        statement(
          db,
          `SELECT ${BACKLOG_COLUMNS} FROM chunks c JOIN batches b ON b.id = c.batch_id
           WHERE c.upstream = ? AND c.state IN ('queued', 'native') AND b.status = 'in_progress'
           ORDER BY c.deadline_ms, c.first_line, c.chunk_id LIMIT ?`,
        ).all(queue, limit) as Parameters<typeof rowToNativeChunk>[0][]
      ).map(rowToNativeChunk),
    insertSub: async (sub, nowMs) =>
      db.transaction(() => {
        const chunks: LoadedChunk[] = [];
        for (const [chunkId, indexes] of keysByChunk(sub.keys)) {
          const chunk = load(chunkId);
          if (!chunk || !handLines(chunk, indexes)) return false;
          chunks.push(chunk);
        }
        for (const c of chunks) writeHanded(c, 'native');
        statement(
          db,
          `INSERT INTO native_subs (${SUB_COLUMNS}) VALUES (@marker, @batch_id, @upstream, @model,
           'intent', @keys, @tokens, @bytes, NULL, @upstream_input_file_id, NULL, @created_at_ms, @next_poll_ms,
           0, 0, NULL, 0, 0)`,
        ).run({ ...sub, keys: JSON.stringify(sub.keys), next_poll_ms: nowMs });
        return true;
      })(),
    getSub: async (marker) => {
      const row = statement(db, `SELECT ${SUB_COLUMNS} FROM native_subs WHERE marker = ?`).get(
        marker,
      ) as NativeSubRow | undefined;
      return row ? rowToSub(row) : null;
    },
    openSubs: async (upstream) =>
      (
        statement(
          db,
          `SELECT ${SUB_COLUMNS} FROM native_subs
           WHERE upstream = ? AND state IN ('intent', 'submitted', 'ended') ORDER BY seq`,
        ).all(upstream) as NativeSubRow[]
      ).map(rowToSub),
    updateSub: async (marker, patch) => {
      const entries = Object.entries(patch).map(([k, v]) => [
        k,
        typeof v === 'boolean' ? Number(v) : v,
      ]);
      if (entries.length === 0) return;
      const set = entries.map(([k]) => `${String(k)} = @${String(k)}`).join(', ');
      statement(db, `UPDATE native_subs SET ${set} WHERE marker = @marker`).run({
        ...Object.fromEntries(entries),
        marker,
      });
    },
    releaseSub: async (marker, state) =>
      db.transaction(() => {
        const row = statement(db, `SELECT ${SUB_COLUMNS} FROM native_subs WHERE marker = ?`).get(
          marker,
        ) as NativeSubRow | undefined;
        if (!row || row.state === 'released' || row.state === 'merged') return;
        for (const [chunkId, indexes] of keysByChunk(rowToSub(row).keys)) {
          const chunk = load(chunkId);
          if (!chunk || chunk.state !== 'native') continue;
          takeBackLines(chunk, indexes);
          writeHanded(chunk, 'native');
        }
        statement(db, `UPDATE native_subs SET state = ? WHERE marker = ?`).run(state, marker);
      })(),
    moveNativeLines: async (batchId, queue, target) =>
      db.transaction(() => {
        const rows = statement(
          db,
          `SELECT * FROM chunks WHERE batch_id = ? AND upstream = ? AND state IN ('queued', 'native')`,
        ).all(batchId, queue) as ChunkRow[];
        let lines = 0;
        for (const row of rows) lines += undoneCount(loadChunk(row));
        if ('upstream' in target)
          statement(
            db,
            `UPDATE chunks SET upstream = ?, state = 'queued', sent = NULL
             WHERE batch_id = ? AND upstream = ? AND state IN ('queued', 'native')`,
          ).run(target.upstream, batchId, queue);
        else
          statement(
            db,
            `UPDATE chunks SET state = ?, sent = NULL
             WHERE batch_id = ? AND upstream = ? AND state IN ('queued', 'native')`,
          ).run(target.stop, batchId, queue);
        return lines;
      })(),
    countExecution: async (batchId, add) =>
      db.transaction(() => setExecution(batchId, addExecutionCounts(execution(batchId), add)))(),
  };
}
