import BetterSqlite3 from 'better-sqlite3';
import type { Database } from 'better-sqlite3';
import type { BatchError, BatchListQuery } from '../../protocol/batch.ts';
import type { FileListQuery } from '../../protocol/file.ts';
import type { BatchRecord, FileRecord, KeyGrant } from '../../domain/records.ts';
import { cancelEffect } from '../../domain/batch-state.ts';
import type { BatchStatusTotals, FinalStatus, Store } from '../store.ts';
import {
  batchToRow,
  rowToBatch,
  rowToStatusTotals,
  STATUS_TOTALS_SQL,
  type BatchRow,
} from '../batch-row.ts';
import { SqliteChunkQueue } from './chunk-queue.ts';
import { ChunkStatements } from './chunk-rows.ts';
import { LeaseSweeper } from './lease-sweep.ts';
import { findIdempotencyKey, insertOnce, purgeIdempotencyKeys } from './idempotency-keys.ts';
import { migrate } from './migrations.ts';
import { createWebhookRows, recordBatchEvent } from './webhook-rows.ts';
import { createBatchChunks } from './batch-chunks.ts';
import { createCostRows } from './cost-rows.ts';
import { createSqliteNativeRows } from './native-rows.ts';
import { statement } from './statement-cache.ts';
import { WalSync } from './wal-sync.ts';

/** Opens (creating if needed) the SQLite database at `path` in WAL mode with synchronous=FULL. */
export function openSqlite(path: string): Database {
  const db = new BetterSqlite3(path);
  db.pragma('journal_mode = WAL');
  // better-sqlite3 defaults to NORMAL, which can lose committed transactions on power loss.
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  migrate(db);
  return db;
}

/** The embedded store: one SQLite file, one writer (this process). */
export function createSqliteStore(path: string): Store {
  const db = openSqlite(path);
  const rows = new ChunkStatements(db);
  const queue = new SqliteChunkQueue(db, rows);
  const sweeper = new LeaseSweeper(db, rows);
  const chunks = createBatchChunks(db);
  const walSync = new WalSync(`${path}-wal`);
  const q = {
    batchById: statement(db, `SELECT * FROM batches WHERE id = ?`),
    batchInProject: statement(db, `SELECT * FROM batches WHERE id = ? AND project = ?`),
    fileInProject: statement(db, `SELECT * FROM files WHERE id = ? AND project = ?`),
  };
  const getBatchRow = (id: string) => q.batchById.get(id) as BatchRow | undefined;

  const store: Store = {
    shared: false,
    native: createSqliteNativeRows(db),
    // One process owns an embedded store (its pid lock): nobody else can hold a duty.
    withBatchDuty: async (_batchId, duty) => {
      await duty();
      return true;
    },
    readAnswers: () => {
      throw new Error('an embedded store keeps answers in spools, not rows');
    },
    ping: async () => {
      statement(db, `SELECT 1 FROM batches LIMIT 1`).get();
    },
    hasApiKeys: async () => statement(db, `SELECT 1 FROM api_keys LIMIT 1`).get() !== undefined,
    insertApiKey: async (key) => {
      statement(
        db,
        `INSERT INTO api_keys (key_hash, project, role, created_at_ms) VALUES (@key_hash, @project, @role, @created_at_ms)`,
      ).run(key);
    },
    keyByHash: async (hash) =>
      (statement(db, `SELECT project, role FROM api_keys WHERE key_hash = ?`).get(hash) as
        KeyGrant | undefined) ?? null,

    projectUsage: async (project) => {
      const batches = statement(
        db,
        `SELECT COUNT(*) AS n FROM batches WHERE project = ? AND status IN ('validating', 'in_progress', 'finalizing', 'cancelling')`,
      ).get(project) as { n: number };
      const files = statement(
        db,
        `SELECT COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS bytes FROM files WHERE project = ?`,
      ).get(project) as { n: number; bytes: number };
      return { activeBatches: batches.n, files: files.n, fileBytes: files.bytes };
    },
    insertFile: async (file, key) => insertOnce(db, key, () => insertFileRow(db, file)),
    getFile: async (project, id) =>
      (q.fileInProject.get(id, project) as FileRecord | undefined) ?? null,
    getFileById: async (id) =>
      (statement(db, `SELECT ${FILE_COLUMNS} FROM files WHERE id = ?`).get(id) as
        FileRecord | undefined) ?? null,
    listFiles: async (project, query) => listFiles(db, project, query),
    fileInUse: async (id) =>
      statement(
        db,
        `SELECT 1 FROM batches WHERE input_file_id = ? AND status IN ('validating', 'in_progress', 'cancelling', 'finalizing') LIMIT 1`,
      ).get(id) !== undefined,
    deleteFile: async (project, id) =>
      statement(db, `DELETE FROM files WHERE id = ? AND project = ?`).run(id, project).changes ===
      1,
    unneededBlobs: async (ids) => ids.filter((id) => !blobNeeded(db, id)),
    deleteExpiredFiles: async (nowMs, limit) =>
      (
        statement(
          db,
          `DELETE FROM files WHERE id IN (SELECT id FROM files WHERE expires_at_ms <= ? LIMIT ?) RETURNING id`,
        ).all(nowMs, limit) as { id: string }[]
      ).map((r) => r.id),

    insertBatch: async (batch, key) => insertOnce(db, key, () => insertBatchRow(db, batch)),
    findIdempotencyKey: async (project, scope, key, liveAfterMs) =>
      findIdempotencyKey(db, project, scope, key, liveAfterMs),
    purgeIdempotencyKeys: async (beforeMs) => purgeIdempotencyKeys(db, beforeMs),
    getBatch: async (project, id) => {
      const row = q.batchInProject.get(id, project) as BatchRow | undefined;
      return row ? rowToBatch(row) : null;
    },
    listBatches: async (project, query) => listBatches(db, project, query),
    requestCancel: async (project, id, nowMs) => requestCancel(db, project, id, nowMs),

    batchesWithStatus: async (statuses) => {
      const marks = statuses.map(() => '?').join(', ');
      const rows = statement(
        db,
        `SELECT * FROM batches WHERE status IN (${marks}) ORDER BY seq`,
      ).all(...statuses) as BatchRow[];
      return rows.map(rowToBatch);
    },
    getBatchById: async (id) => {
      const row = getBatchRow(id);
      return row ? rowToBatch(row) : null;
    },
    ...chunks,
    ...createWebhookRows(db),
    ...createCostRows(db),
    markInProgress: async (batchId, total, model, nowMs) =>
      markInProgress(db, batchId, total, model, nowMs),
    markFailed: async (batchId, errors, nowMs) => markFailed(db, batchId, errors, nowMs),
    markFinalizing: async (batchId, nowMs) => {
      statement(
        db,
        `UPDATE batches SET status = 'finalizing', finalizing_at_ms = COALESCE(finalizing_at_ms, ?) WHERE id = ? AND status = 'in_progress'`,
      ).run(nowMs, batchId);
    },
    completeBatch: async (batchId, status, files, nowMs) =>
      completeBatch(db, batchId, status, files, nowMs),

    claimChunks: async (upstream, limits, leaseMs, nowMs) =>
      queue.claim(upstream, limits, leaseMs, nowMs),
    renewLeases: async (leases, untilMs) => queue.renew(leases, untilMs),
    markSent: async (lines) => queue.markSent(lines),
    applicableOutcomes: async (outcomes) => queue.applicable(outcomes),
    recordOutcomes: async (outcomes, spools, nowMs) => {
      queue.record(outcomes, spools, nowMs);
      await walSync.sync();
    },
    releaseLeases: async (nowMs, opts) => sweeper.sweep(nowMs, opts),
    batchTotals: async () => batchTotals(db),
    recentBatches: async (project, limit) =>
      (project === null
        ? (statement(db, `SELECT * FROM batches ORDER BY seq DESC LIMIT ?`).all(
            limit,
          ) as BatchRow[])
        : (statement(db, `SELECT * FROM batches WHERE project = ? ORDER BY seq DESC LIMIT ?`).all(
            project,
            limit,
          ) as BatchRow[])
      ).map(rowToBatch),
    recentFiles: async (project, limit) =>
      project === null
        ? (statement(db, `SELECT ${FILE_COLUMNS} FROM files ORDER BY seq DESC LIMIT ?`).all(
            limit,
          ) as FileRecord[])
        : (statement(
            db,
            `SELECT ${FILE_COLUMNS} FROM files WHERE project = ? ORDER BY seq DESC LIMIT ?`,
          ).all(project, limit) as FileRecord[]),
    queuedLines: async () =>
      statement(
        db,
        `SELECT upstream, SUM(line_count) AS lines FROM chunks
         WHERE state IN ('pending', 'queued') GROUP BY upstream`,
      ).all() as { upstream: string; lines: number }[],
    close: async () => {
      await walSync.close();
      db.close();
    },
  };
  return store;
}

function batchTotals(db: Database): BatchStatusTotals[] {
  const rows = statement(db, STATUS_TOTALS_SQL).all() as Parameters<typeof rowToStatusTotals>[0][];
  return rows.map(rowToStatusTotals);
}

function insertFileRow(db: Database, file: FileRecord): void {
  statement(
    db,
    `INSERT INTO files (id, project, purpose, filename, bytes, created_at_ms, expires_at_ms, seq)
     VALUES (@id, @project, @purpose, @filename, @bytes, @created_at_ms, @expires_at_ms,
       (SELECT COALESCE(MAX(seq), 0) + 1 FROM files))`,
  ).run(file);
}

function blobNeeded(db: Database, id: string): boolean {
  return (
    statement(
      db,
      `SELECT 1 FROM files WHERE id = @id
       UNION ALL SELECT 1 FROM batches WHERE reserved_output_file_id = @id OR reserved_error_file_id = @id
       UNION ALL SELECT 1 FROM batches WHERE input_file_id = @id
         AND status IN ('validating', 'in_progress', 'cancelling', 'finalizing')
       LIMIT 1`,
    ).get({ id }) !== undefined
  );
}

function insertBatchRow(db: Database, batch: BatchRecord): void {
  const seq = (
    statement(db, `SELECT COALESCE(MAX(seq), 0) + 1 AS seq FROM batches`).get() as { seq: number }
  ).seq;
  const row = batchToRow(batch, seq);
  const cols = Object.keys(row);
  statement(
    db,
    `INSERT INTO batches (${cols.join(', ')}) VALUES (${cols.map((c) => '@' + c).join(', ')})`,
  ).run(row);
}

const FILE_COLUMNS = 'id, project, purpose, filename, bytes, created_at_ms, expires_at_ms';

function listFiles(db: Database, project: string, query: FileListQuery): FileRecord[] {
  const desc = query.order === 'desc';
  const params: unknown[] = [project];
  let where = 'project = ?';
  if (query.purpose !== undefined) {
    where += ' AND purpose = ?';
    params.push(query.purpose);
  }
  if (query.after !== undefined) {
    where += ` AND seq ${desc ? '<' : '>'} COALESCE((SELECT seq FROM files WHERE id = ? AND project = ?), ${desc ? '-1' : '9e18'})`;
    params.push(query.after, project);
  }
  const sql = `SELECT ${FILE_COLUMNS} FROM files WHERE ${where} ORDER BY seq ${desc ? 'DESC' : 'ASC'} LIMIT ?`;
  return statement(db, sql).all(...params, query.limit + 1) as FileRecord[];
}

function listBatches(db: Database, project: string, query: BatchListQuery): BatchRecord[] {
  const params: unknown[] = [project];
  let where = 'project = ?';
  if (query.after !== undefined) {
    where += ' AND seq < COALESCE((SELECT seq FROM batches WHERE id = ? AND project = ?), -1)';
    params.push(query.after, project);
  }
  const rows = statement(db, `SELECT * FROM batches WHERE ${where} ORDER BY seq DESC LIMIT ?`).all(
    ...params,
    query.limit + 1,
  ) as BatchRow[];
  return rows.map(rowToBatch);
}

function requestCancel(
  db: Database,
  project: string,
  id: string,
  nowMs: number,
): BatchRecord | null {
  return db.transaction(() => {
    const row = statement(db, `SELECT * FROM batches WHERE id = ? AND project = ?`).get(
      id,
      project,
    ) as BatchRow | undefined;
    if (!row) return null;
    const batch = rowToBatch(row);
    if (cancelEffect(batch.status) !== 'start') return batch;
    statement(
      db,
      `UPDATE batches SET status = 'cancelling', cancelling_at_ms = ? WHERE id = ?`,
    ).run(nowMs, id);
    // One row per chunk of up to CHUNK_MAX_LINES lines: a 1,000,000-line batch is ~8,000 rows.
    statement(
      db,
      `UPDATE chunks SET state = 'cancelled' WHERE batch_id = ? AND state IN ('pending', 'queued')`,
    ).run(id);
    return { ...batch, status: 'cancelling' as const, cancelling_at_ms: nowMs };
  })();
}

/** validating → in_progress (false if cancelled meanwhile); its items are queued in chunks after. */
function markInProgress(
  db: Database,
  batchId: string,
  total: number,
  model: string | null,
  nowMs: number,
): boolean {
  const moved = statement(
    db,
    `UPDATE batches SET status = 'in_progress', in_progress_at_ms = ?, total = ?, model = ? WHERE id = ? AND status = 'validating'`,
  ).run(nowMs, total, model, batchId).changes;
  return moved === 1;
}

function markFailed(db: Database, batchId: string, errors: BatchError[], nowMs: number): void {
  db.transaction(() => {
    recordBatchEvent(db, batchId, 'failed', nowMs);
    statement(
      db,
      `UPDATE batches SET status = 'failed', failed_at_ms = ?, errors = ? WHERE id = ?`,
    ).run(nowMs, JSON.stringify(errors), batchId);
    statement(db, `DELETE FROM chunks WHERE batch_id = ?`).run(batchId);
  })();
}

function completeBatch(
  db: Database,
  batchId: string,
  status: FinalStatus,
  files: { output: FileRecord | null; error: FileRecord | null },
  nowMs: number,
): void {
  const stampColumn = {
    completed: 'completed_at_ms',
    expired: 'expired_at_ms',
    cancelled: 'cancelled_at_ms',
  }[status];
  db.transaction(() => {
    recordBatchEvent(db, batchId, status, nowMs);
    if (files.output) insertFileRow(db, files.output);
    if (files.error) insertFileRow(db, files.error);
    statement(
      db,
      `UPDATE batches SET status = ?, ${stampColumn} = ?, output_file_id = ?, error_file_id = ?,
         reserved_output_file_id = NULL, reserved_error_file_id = NULL WHERE id = ?`,
    ).run(status, nowMs, files.output?.id ?? null, files.error?.id ?? null, batchId);
  })();
}
