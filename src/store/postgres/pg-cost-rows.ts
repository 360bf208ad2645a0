import type pg from 'pg';
import type { CachedResponse, CostOps } from '../cost-ops.ts';
import { inTransaction } from './pg-pool.ts';

/** The cost controls' rows on PostgreSQL: early stops and the response cache. */
export function createPgCostRows(pool: pg.Pool): CostOps {
  return {
    stopBatchEarly: async (batchId, code, errors, nowMs) =>
      inTransaction(pool, async (tx) => {
        const moved = await tx.query(
          `UPDATE batches SET status = 'cancelling', cancelling_at_ms = $1, stop_code = $2,
             errors = $3 WHERE id = $4 AND status = 'in_progress'`,
          [nowMs, code, JSON.stringify(errors), batchId],
        );
        if ((moved.rowCount ?? 0) === 0) return false;
        await tx.query(
          `UPDATE chunks SET state = 'cancelled' WHERE batch_id = $1 AND state IN ('pending', 'queued')`,
          [batchId],
        );
        return true;
      }),
    cachedResponse: async (scope, key, nowMs) =>
      (
        await pool.query<CachedResponse>(
          `SELECT * FROM response_cache WHERE scope = $1 AND key = $2 AND expires_at_ms > $3`,
          [scope, key, nowMs],
        )
      ).rows[0] ?? null,
    putCachedResponse: async (e) => {
      await pool.query(
        `INSERT INTO response_cache (scope, key, status, body, created_at_ms, expires_at_ms)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (scope, key) DO UPDATE SET status = EXCLUDED.status, body = EXCLUDED.body,
           created_at_ms = EXCLUDED.created_at_ms, expires_at_ms = EXCLUDED.expires_at_ms`,
        [e.scope, e.key, e.status, e.body, e.created_at_ms, e.expires_at_ms],
      );
    },
    pruneResponseCache: async (nowMs, maxEntries) =>
      (
        await pool.query(
          `DELETE FROM response_cache WHERE expires_at_ms <= $1 OR (scope, key) IN (
             SELECT scope, key FROM response_cache WHERE expires_at_ms > $1
             ORDER BY created_at_ms DESC OFFSET $2)`,
          [nowMs, maxEntries],
        )
      ).rowCount ?? 0,
  };
}
