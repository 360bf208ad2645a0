import type pg from 'pg';
import type { LimiterExchangeReply, LimiterExchangeRequest } from '../store.ts';
import { inTransaction } from './pg-pool.ts';

/** The key under which a process records that it is alive at all. */
const LIVE_KEY = '';
/** Rows older than this are deleted by whichever heartbeat passes by. */
const FORGET_AFTER = '5 minutes';

/**
 * One heartbeat of the cluster rate-limit exchange: records that this process is alive and the
 * keys it sends on now (replacing those it said before, so one that stopped hands its share back
 * at its next heartbeat), publishes the 429 cooldowns it saw (the longest wins), and reads back
 * how many live processes send on each key and which cooldowns still run.
 */
export async function exchangeLimiterState(
  pool: pg.Pool,
  req: LimiterExchangeRequest,
): Promise<LimiterExchangeReply> {
  return inTransaction(pool, async (tx) => {
    const keys = [LIVE_KEY, ...req.activeKeys];
    await tx.query(`DELETE FROM limiter_members WHERE member_id = $1 AND key <> ALL($2::text[])`, [
      req.memberId,
      keys,
    ]);
    await tx.query(
      `INSERT INTO limiter_members (member_id, key, seen_at)
       SELECT $1, k, clock_timestamp() FROM unnest($2::text[]) AS k
       ON CONFLICT (member_id, key) DO UPDATE SET seen_at = excluded.seen_at`,
      [req.memberId, keys],
    );
    if (req.cooldowns.size > 0)
      await tx.query(
        `INSERT INTO limiter_cooldowns (key, until_at)
         SELECT k, clock_timestamp() + ms * interval '1 millisecond'
         FROM unnest($1::text[], $2::float8[]) AS c(k, ms)
         ON CONFLICT (key) DO UPDATE SET until_at = greatest(limiter_cooldowns.until_at, excluded.until_at)`,
        [[...req.cooldowns.keys()], [...req.cooldowns.values()]],
      );
    const members = await tx.query<{ key: string; n: string }>(
      `WITH gone AS (
         DELETE FROM limiter_members WHERE seen_at < clock_timestamp() - interval '${FORGET_AFTER}'
       )
       SELECT m.key, count(*) AS n
       FROM limiter_members m
       JOIN limiter_members live ON live.member_id = m.member_id AND live.key = ''
       WHERE live.seen_at > clock_timestamp() - $1 * interval '1 millisecond'
       GROUP BY m.key`,
      [req.liveWindowMs],
    );
    const cooldowns = await tx.query<{ key: string; ms: number }>(
      `WITH gone AS (
         DELETE FROM limiter_cooldowns WHERE until_at < clock_timestamp() - interval '${FORGET_AFTER}'
       )
       SELECT key, extract(epoch FROM until_at - clock_timestamp()) * 1000 AS ms
       FROM limiter_cooldowns WHERE until_at > clock_timestamp()`,
    );
    const activeByKey = new Map(members.rows.map((r) => [r.key, Number(r.n)]));
    const liveMembers = activeByKey.get(LIVE_KEY) ?? 1;
    activeByKey.delete(LIVE_KEY);
    return {
      liveMembers,
      activeByKey,
      cooldownMsByKey: new Map(cooldowns.rows.map((r) => [r.key, Number(r.ms)])),
    };
  });
}
