import type { Database } from 'better-sqlite3';
import type { IdempotencyClaim, IdempotencyEntry } from '../store.ts';
import { statement } from './statement-cache.ts';

const COLUMNS = 'project, scope, key, request_hash, object_id, created_at_ms';

/** The entry holding `key` if it was recorded after `liveAfterMs`. */
export function findIdempotencyKey(
  db: Database,
  project: string,
  scope: string,
  key: string,
  liveAfterMs: number,
): IdempotencyEntry | null {
  const row = statement(
    db,
    `SELECT ${COLUMNS} FROM idempotency_keys
     WHERE project = ? AND scope = ? AND key = ? AND created_at_ms > ?`,
  ).get(project, scope, key, liveAfterMs) as IdempotencyEntry | undefined;
  return row ?? null;
}

/**
 * Runs `insert` and records `claim` in one transaction, unless a live entry holds the key: then
 * nothing is written and that entry is returned. An expired entry is replaced.
 */
export function insertOnce(
  db: Database,
  claim: IdempotencyClaim | undefined,
  insert: () => void,
): IdempotencyEntry | null {
  if (!claim) {
    insert();
    return null;
  }
  return db.transaction(() => {
    const held = findIdempotencyKey(db, claim.project, claim.scope, claim.key, claim.live_after_ms);
    if (held) return held;
    insert();
    const { live_after_ms: _live, ...entry } = claim;
    statement(
      db,
      `INSERT OR REPLACE INTO idempotency_keys (${COLUMNS})
       VALUES (@project, @scope, @key, @request_hash, @object_id, @created_at_ms)`,
    ).run(entry);
    return null;
  })();
}

export function purgeIdempotencyKeys(db: Database, beforeMs: number): number {
  return statement(db, `DELETE FROM idempotency_keys WHERE created_at_ms < ?`).run(beforeMs)
    .changes;
}
