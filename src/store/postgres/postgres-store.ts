import type pg from 'pg';
import type { BatchError, BatchListQuery } from '../../protocol/batch.ts';
import type { FileListQuery } from '../../protocol/file.ts';
import type { BatchRecord, FileRecord, KeyGrant } from '../../domain/records.ts';
import { AppError } from '../../domain/app-error.ts';
import { cancelEffect } from '../../domain/batch-state.ts';
import {
  batchToRow,
  rowToBatch,
  rowToStatusTotals,
  STATUS_TOTALS_SQL,
  type BatchRow,
} from '../batch-row.ts';
import type { BatchStatusTotals, FinalStatus, Store } from '../store.ts';
import { migrate } from './migrations.ts';
import { createPgNativeRows } from './pg-native-rows.ts';
import { createPgBatchChunks } from './pg-batch-chunks.ts';
import { findIdempotencyKey, insertOnce } from './pg-idempotency-keys.ts';
import { createPgWebhookRows, recordBatchEvent } from './pg-webhook-rows.ts';
import { PgChunkQueue } from './pg-chunk-queue.ts';
import { exchangeLimiterState } from './pg-limiter-exchange.ts';
import { createPgCostRows } from './pg-cost-rows.ts';
import { createPool, inTransaction, isUnavailable, type Queryable } from './pg-pool.ts';

const FILE_COLUMNS = 'id, project, purpose, filename, bytes, created_at_ms, expires_at_ms';
const RUNNING = `('validating', 'in_progress', 'cancelling', 'finalizing')`;

/**
 * The shared store: PostgreSQL, for one process or many (each claim locks with SKIP LOCKED, every
 * outcome is fenced by its chunk's lease_gen). Migrations run on open.
 */
export async function createPostgresStore(
  url: string,
  opts: { poolSize?: number } = {},
): Promise<Store> {
  const pool = createPool(url, opts.poolSize);
  try {
    await migrate(pool);
  } catch (err) {
    await pool.end();
    throw err;
  }
  const queue = new PgChunkQueue(pool);
  // Duty locks hold a connection each while their duty runs: a pool of their own, so duties
  // never wait for connections they themselves hold.
  const lockPool = createPool(url, 16);
  const one = async <T extends pg.QueryResultRow>(sql: string, params: unknown[]) =>
    (await pool.query<T>(sql, params)).rows[0];
  const batchRow = async (sql: string, params: unknown[]) => {
    const row = await one<BatchRow>(sql, params);
    return row ? rowToBatch(row) : null;
  };

  return guarded({
    shared: true,
    native: createPgNativeRows(pool),
    withBatchDuty: async (batchId, duty) =>
      withAdvisoryLock(lockPool, `openbatch:batch:${batchId}`, duty),
    readAnswers: (batchId, file, start, end) => readAnswers(pool, batchId, file, start, end),
    ping: async () => {
      await pool.query(`SELECT 1`);
    },
    limiterExchange: async (request) => exchangeLimiterState(pool, request),
    getFileById: async (id) =>
      (await one<FileRecord>(`SELECT ${FILE_COLUMNS} FROM files WHERE id = $1`, [id])) ?? null,
    batchTotals: async () => batchTotals(pool),
    recentBatches: async (project, limit) =>
      (
        await pool.query<BatchRow>(
          `SELECT * FROM batches WHERE ($1::text IS NULL OR project = $1) ORDER BY seq DESC LIMIT $2`,
          [project, limit],
        )
      ).rows.map(rowToBatch),
    recentFiles: async (project, limit) =>
      (
        await pool.query<FileRecord>(
          `SELECT ${FILE_COLUMNS} FROM files WHERE ($1::text IS NULL OR project = $1)
           ORDER BY seq DESC LIMIT $2`,
          [project, limit],
        )
      ).rows,
    queuedLines: async () =>
      (
        await pool.query<{ upstream: string; lines: number }>(
          `SELECT upstream, SUM(line_count) AS lines FROM chunks
           WHERE state IN ('pending', 'queued') GROUP BY upstream`,
        )
      ).rows,
    hasApiKeys: async () => (await one(`SELECT 1 FROM api_keys LIMIT 1`, [])) !== undefined,
    insertApiKey: async (key) => {
      await pool.query(
        `INSERT INTO api_keys (key_hash, project, role, created_at_ms) VALUES ($1, $2, $3, $4)`,
        [key.key_hash, key.project, key.role, key.created_at_ms],
      );
    },
    keyByHash: async (hash) =>
      (await one<KeyGrant>(`SELECT project, role FROM api_keys WHERE key_hash = $1`, [hash])) ??
      null,
    projectUsage: async (project) => {
      const row = await one<{ batches: number; files: number; bytes: number }>(
        `SELECT
           (SELECT COUNT(*) FROM batches WHERE project = $1 AND status IN ${RUNNING}) AS batches,
           (SELECT COUNT(*) FROM files WHERE project = $1) AS files,
           (SELECT COALESCE(SUM(bytes), 0) FROM files WHERE project = $1) AS bytes`,
        [project],
      );
      return {
        activeBatches: row?.batches ?? 0,
        files: row?.files ?? 0,
        fileBytes: row?.bytes ?? 0,
      };
    },

    insertFile: async (file, key) => insertOnce(pool, key, (tx) => insertFileRow(tx, file)),
    unneededBlobs: async (ids) => {
      const { rows } = await pool.query<{ id: string }>(
        `SELECT id FROM unnest($1::text[]) AS ids(id) WHERE NOT EXISTS (
           SELECT 1 FROM files WHERE files.id = ids.id
           UNION ALL SELECT 1 FROM batches
             WHERE reserved_output_file_id = ids.id OR reserved_error_file_id = ids.id
           UNION ALL SELECT 1 FROM batches WHERE input_file_id = ids.id AND status IN ${RUNNING})`,
        [ids],
      );
      return rows.map((r) => r.id);
    },
    getFile: async (project, id) =>
      (await one<FileRecord>(`SELECT ${FILE_COLUMNS} FROM files WHERE id = $1 AND project = $2`, [
        id,
        project,
      ])) ?? null,
    listFiles: async (project, query) => listFiles(pool, project, query),
    fileInUse: async (id) =>
      (await one(
        `SELECT 1 FROM batches WHERE input_file_id = $1 AND status IN ${RUNNING} LIMIT 1`,
        [id],
      )) !== undefined,
    deleteFile: async (project, id) =>
      ((await pool.query(`DELETE FROM files WHERE id = $1 AND project = $2`, [id, project]))
        .rowCount ?? 0) === 1,
    deleteExpiredFiles: async (nowMs, limit) =>
      (
        await pool.query<{ id: string }>(
          `DELETE FROM files WHERE id IN (SELECT id FROM files WHERE expires_at_ms <= $1 LIMIT $2
             FOR UPDATE SKIP LOCKED) RETURNING id`,
          [nowMs, limit],
        )
      ).rows.map((r) => r.id),

    insertBatch: async (batch, key) =>
      insertOnce(pool, key, async (tx) => {
        const { seq: _seq, ...row } = batchToRow(batch, 0);
        const cols = Object.keys(row);
        await tx.query(
          `INSERT INTO batches (${cols.join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')})`,
          Object.values(row),
        );
      }),
    findIdempotencyKey: async (project, scope, key, liveAfterMs) =>
      findIdempotencyKey(pool, project, scope, key, liveAfterMs),
    purgeIdempotencyKeys: async (beforeMs) =>
      (await pool.query(`DELETE FROM idempotency_keys WHERE created_at_ms < $1`, [beforeMs]))
        .rowCount ?? 0,
    ...createPgWebhookRows(pool),
    ...createPgCostRows(pool),
    getBatch: async (project, id) =>
      batchRow(`SELECT * FROM batches WHERE id = $1 AND project = $2`, [id, project]),
    listBatches: async (project, query) => listBatches(pool, project, query),
    requestCancel: async (project, id, nowMs) => requestCancel(pool, project, id, nowMs),

    batchesWithStatus: async (statuses) =>
      (
        await pool.query<BatchRow>(
          `SELECT * FROM batches WHERE status = ANY($1::text[]) ORDER BY seq`,
          [statuses],
        )
      ).rows.map(rowToBatch),
    getBatchById: async (id) => batchRow(`SELECT * FROM batches WHERE id = $1`, [id]),
    ...createPgBatchChunks(pool),
    markInProgress: async (batchId, total, model, nowMs) =>
      (
        await pool.query(
          `UPDATE batches SET status = 'in_progress', in_progress_at_ms = $1, total = $2, model = $3
           WHERE id = $4 AND status = 'validating'`,
          [nowMs, total, model, batchId],
        )
      ).rowCount === 1,
    markFailed: async (batchId, errors, nowMs) => markFailed(pool, batchId, errors, nowMs),
    markFinalizing: async (batchId, nowMs) => {
      await pool.query(
        `UPDATE batches SET status = 'finalizing', finalizing_at_ms = COALESCE(finalizing_at_ms, $1)
         WHERE id = $2 AND status = 'in_progress'`,
        [nowMs, batchId],
      );
    },
    completeBatch: async (batchId, status, files, nowMs) =>
      completeBatch(pool, batchId, status, files, nowMs),

    claimChunks: async (upstream, limits, leaseMs, nowMs) =>
      queue.claim(upstream, limits, leaseMs, nowMs),
    renewLeases: async (leases, untilMs) => queue.renew(leases, untilMs),
    markSent: async (lines) => queue.markSent(lines),
    applicableOutcomes: async (outcomes) => queue.applicable(outcomes),
    recordOutcomes: async (outcomes, spools) => queue.record(outcomes, spools),
    releaseLeases: async (nowMs, opts) => queue.sweep(nowMs, opts),
    close: async () => {
      await lockPool.end();
      await pool.end();
    },
  });
}

/**
 * Every store call that fails because the database is unreachable (restarted, network cut)
 * throws AppError store_unavailable: the API answers 503 in OpenAI's envelope, the engine's loops
 * log it and try again, and nothing waits forever (connection and statement timeouts).
 */
function guarded(store: Store): Store {
  const wrapped = { ...store } as unknown as Record<string, unknown>;
  // Async methods only: `shared` is a value, and readAnswers (a generator) maps its own errors.
  const methods = Object.entries(store).filter(
    ([name, value]) => typeof value === 'function' && name !== 'readAnswers',
  ) as [string, (...a: unknown[]) => Promise<unknown>][];
  for (const [name, method] of methods) {
    wrapped[name] = async (...args: unknown[]) => {
      try {
        return await method(...args);
      } catch (err) {
        if (!isUnavailable(err)) throw err;
        throw new AppError(
          'store_unavailable',
          'The service is temporarily unavailable (its database cannot be reached). Please try again shortly.',
          { cause: err },
        );
      }
    };
  }
  return wrapped as unknown as Store;
}

async function batchTotals(pool: pg.Pool): Promise<BatchStatusTotals[]> {
  const { rows } = await pool.query<Parameters<typeof rowToStatusTotals>[0]>(STATUS_TOTALS_SQL);
  return rows.map(rowToStatusTotals);
}

async function insertFileRow(db: Queryable, file: FileRecord): Promise<void> {
  await db.query(
    `INSERT INTO files (id, project, purpose, filename, bytes, created_at_ms, expires_at_ms)
     VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [
      file.id,
      file.project,
      file.purpose,
      file.filename,
      file.bytes,
      file.created_at_ms,
      file.expires_at_ms,
    ],
  );
}

async function listFiles(
  pool: pg.Pool,
  project: string,
  query: FileListQuery,
): Promise<FileRecord[]> {
  const desc = query.order === 'desc';
  const params: unknown[] = [project];
  let where = 'project = $1';
  if (query.purpose !== undefined) {
    params.push(query.purpose);
    where += ` AND purpose = $${params.length}`;
  }
  if (query.after !== undefined) {
    params.push(query.after);
    where += ` AND seq ${desc ? '<' : '>'} COALESCE((SELECT seq FROM files WHERE id = $${params.length} AND project = $1), ${desc ? '-1' : '9e18'})`;
  }
  params.push(query.limit + 1);
  const sql = `SELECT ${FILE_COLUMNS} FROM files WHERE ${where} ORDER BY seq ${desc ? 'DESC' : 'ASC'} LIMIT $${params.length}`;
  return (await pool.query<FileRecord>(sql, params)).rows;
}

async function listBatches(
  pool: pg.Pool,
  project: string,
  query: BatchListQuery,
): Promise<BatchRecord[]> {
  const params: unknown[] = [project];
  let where = 'project = $1';
  if (query.after !== undefined) {
    params.push(query.after);
    where += ` AND seq < COALESCE((SELECT seq FROM batches WHERE id = $2 AND project = $1), -1)`;
  }
  params.push(query.limit + 1);
  const { rows } = await pool.query<BatchRow>(
    `SELECT * FROM batches WHERE ${where} ORDER BY seq DESC LIMIT $${params.length}`,
    params,
  );
  return rows.map(rowToBatch);
}

async function requestCancel(
  pool: pg.Pool,
  project: string,
  id: string,
  nowMs: number,
): Promise<BatchRecord | null> {
  return inTransaction(pool, async (tx) => {
    const { rows } = await tx.query<BatchRow>(
      `SELECT * FROM batches WHERE id = $1 AND project = $2 FOR UPDATE`,
      [id, project],
    );
    if (!rows[0]) return null;
    const batch = rowToBatch(rows[0]);
    if (cancelEffect(batch.status) !== 'start') return batch;
    await tx.query(
      `UPDATE batches SET status = 'cancelling', cancelling_at_ms = $1 WHERE id = $2`,
      [nowMs, id],
    );
    await tx.query(
      `UPDATE chunks SET state = 'cancelled' WHERE batch_id = $1 AND state IN ('pending', 'queued')`,
      [id],
    );
    return { ...batch, status: 'cancelling' as const, cancelling_at_ms: nowMs };
  });
}

async function markFailed(
  pool: pg.Pool,
  batchId: string,
  errors: BatchError[],
  nowMs: number,
): Promise<void> {
  await inTransaction(pool, async (tx) => {
    await recordBatchEvent(tx, batchId, 'failed', nowMs);
    await tx.query(
      `UPDATE batches SET status = 'failed', failed_at_ms = $1, errors = $2 WHERE id = $3`,
      [nowMs, JSON.stringify(errors), batchId],
    );
    await tx.query(`DELETE FROM chunks WHERE batch_id = $1`, [batchId]);
    await tx.query(`DELETE FROM answers WHERE batch_id = $1`, [batchId]);
  });
}

async function completeBatch(
  pool: pg.Pool,
  batchId: string,
  status: FinalStatus,
  files: { output: FileRecord | null; error: FileRecord | null },
  nowMs: number,
): Promise<void> {
  const stampColumn = {
    completed: 'completed_at_ms',
    expired: 'expired_at_ms',
    cancelled: 'cancelled_at_ms',
  }[status];
  await inTransaction(pool, async (tx) => {
    await recordBatchEvent(tx, batchId, status, nowMs);
    if (files.output) await insertFileRow(tx, files.output);
    if (files.error) await insertFileRow(tx, files.error);
    await tx.query(
      `UPDATE batches SET status = $1, ${stampColumn} = $2, output_file_id = $3, error_file_id = $4,
         reserved_output_file_id = NULL, reserved_error_file_id = NULL WHERE id = $5`,
      [status, nowMs, files.output?.id ?? null, files.error?.id ?? null, batchId],
    );
    // The files hold them now.
    await tx.query(`DELETE FROM answers WHERE batch_id = $1`, [batchId]);
  });
}

const ANSWER_PAGE = 8;

async function* readAnswers(
  pool: pg.Pool,
  batchId: string,
  file: 'output' | 'error',
  start: number,
  end: number,
): AsyncGenerator<Buffer> {
  let from = start;
  while (from < end) {
    // From the row holding byte `from` on, by the primary key alone: a condition on the row's
    // length would read (and detoast) every earlier row on every page, quadratic in the batch.
    const { rows } = await pool.query<{ byte_start: number; data: Buffer }>(
      `SELECT byte_start, data FROM answers
       WHERE batch_id = $1 AND file = $2 AND byte_start < $4
         AND byte_start >= (SELECT coalesce(max(byte_start), 0) FROM answers
                            WHERE batch_id = $1 AND file = $2 AND byte_start <= $3)
       ORDER BY byte_start LIMIT ${ANSWER_PAGE}`,
      [batchId, file, from, end],
    );
    // Gone: the batch ended meanwhile and its answers were deleted. ENOENT, as a removed spool,
    // so a results read retries from the batch's files.
    if (rows.length === 0)
      throw Object.assign(new Error(`answers of ${batchId} end before byte ${end}`), {
        code: 'ENOENT',
      });
    for (const row of rows) {
      const piece = row.data.subarray(from - row.byte_start, end - row.byte_start);
      yield piece;
      from = row.byte_start + row.data.length;
    }
  }
}

/**
 * Runs `work` while holding the session advisory lock `name` on a connection of `pool`, or
 * returns false at once when another session holds it. The lock dies with the connection, so a
 * process killed mid-duty frees it for the others.
 */
async function withAdvisoryLock(
  pool: pg.Pool,
  name: string,
  work: () => Promise<void>,
): Promise<boolean> {
  const client = await pool.connect();
  let broken = false;
  const onError = (): void => {
    broken = true;
  };
  client.on('error', onError);
  try {
    const { rows } = await client.query<{ locked: boolean }>(
      `SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked`,
      [name],
    );
    if (!rows[0]?.locked) return false;
    try {
      await work();
      return true;
    } finally {
      await client
        .query(`SELECT pg_advisory_unlock(hashtextextended($1, 0))`, [name])
        .catch(() => (broken = true));
    }
  } finally {
    client.off('error', onError);
    client.release(broken);
  }
}
