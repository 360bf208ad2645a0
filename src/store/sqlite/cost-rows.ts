import type { Database } from 'better-sqlite3';
import type { CachedResponse, CostOps } from '../cost-ops.ts';
import { statement } from './statement-cache.ts';

/** The cost controls' rows on SQLite: early stops and the response cache. */
export function createCostRows(db: Database): CostOps {
  return {
    stopBatchEarly: async (batchId, code, errors, nowMs) =>
      db.transaction(() => {
        const moved = statement(
          db,
          `UPDATE batches SET status = 'cancelling', cancelling_at_ms = ?, stop_code = ?, errors = ?
           WHERE id = ? AND status = 'in_progress'`,
        ).run(nowMs, code, JSON.stringify(errors), batchId).changes;
        if (moved === 0) return false;
        statement(
          db,
          `UPDATE chunks SET state = 'cancelled' WHERE batch_id = ? AND state IN ('pending', 'queued')`,
        ).run(batchId);
        return true;
      })(),
    cachedResponse: async (scope, key, nowMs) =>
      (statement(
        db,
        `SELECT * FROM response_cache WHERE scope = ? AND key = ? AND expires_at_ms > ?`,
      ).get(scope, key, nowMs) as CachedResponse | undefined) ?? null,
    putCachedResponse: async (e) => {
      statement(
        db,
        `INSERT OR REPLACE INTO response_cache (scope, key, status, body, created_at_ms, expires_at_ms)
         VALUES (@scope, @key, @status, @body, @created_at_ms, @expires_at_ms)`,
      ).run(e);
    },
    pruneResponseCache: async (nowMs, maxEntries) =>
      statement(
        db,
        `DELETE FROM response_cache WHERE expires_at_ms <= @now OR rowid IN (
           SELECT rowid FROM response_cache WHERE expires_at_ms > @now
           ORDER BY created_at_ms DESC LIMIT -1 OFFSET @keep)`,
      ).run({ now: nowMs, keep: maxEntries }).changes,
  };
}
