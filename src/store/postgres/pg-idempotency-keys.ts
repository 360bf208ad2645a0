import type pg from 'pg';
import type { IdempotencyClaim, IdempotencyEntry } from '../store.ts';
import { inTransaction, type Queryable } from './pg-pool.ts';

const COLUMNS = 'project, scope, key, request_hash, object_id, created_at_ms';

/** The entry holding `key` if it was recorded after `liveAfterMs`. */
export async function findIdempotencyKey(
  db: Queryable,
  project: string,
  scope: string,
  key: string,
  liveAfterMs: number,
): Promise<IdempotencyEntry | null> {
  const { rows } = await db.query<IdempotencyEntry>(
    `SELECT ${COLUMNS} FROM idempotency_keys
     WHERE project = $1 AND scope = $2 AND key = $3 AND created_at_ms > $4`,
    [project, scope, key, liveAfterMs],
  );
  return rows[0] ?? null;
}

/**
 * Runs `insert` and records `claim` in one transaction, unless a live entry holds the key: then
 * nothing is written and that entry is returned. Requests racing with one key serialize on a
 * transaction-scoped advisory lock of the key, so exactly one of them inserts.
 */
export async function insertOnce(
  pool: pg.Pool,
  claim: IdempotencyClaim | undefined,
  insert: (tx: Queryable) => Promise<void>,
): Promise<IdempotencyEntry | null> {
  return inTransaction(pool, async (tx) => {
    if (!claim) {
      await insert(tx);
      return null;
    }
    await tx.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, [
      `openbatch:idem:${claim.project}:${claim.scope}:${claim.key}`,
    ]);
    const held = await findIdempotencyKey(
      tx,
      claim.project,
      claim.scope,
      claim.key,
      claim.live_after_ms,
    );
    if (held) return held;
    await insert(tx);
    await tx.query(
      `INSERT INTO idempotency_keys (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (project, scope, key) DO UPDATE SET request_hash = EXCLUDED.request_hash,
         object_id = EXCLUDED.object_id, created_at_ms = EXCLUDED.created_at_ms`,
      [
        claim.project,
        claim.scope,
        claim.key,
        claim.request_hash,
        claim.object_id,
        claim.created_at_ms,
      ],
    );
    return null;
  });
}
