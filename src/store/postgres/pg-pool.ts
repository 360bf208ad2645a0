import pg from 'pg';

/** What both a pool and a client in a transaction can run. */
export type Queryable = Pick<pg.PoolClient, 'query'>;

// Times are epoch ms and counters fit in 2^53: BIGINT and COUNT come back as numbers, not strings.
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === pg.types.builtins.INT8 || oid === pg.types.builtins.NUMERIC
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/** A connection pool for `url`; `max` connections (the engine's loops and the API share them). */
export function createPool(url: string, max = 10): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    types,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    // A statement never waits forever on a lock or a dead server: the caller sees an error.
    statement_timeout: 30_000,
    query_timeout: 35_000,
    application_name: 'openbatch',
  });
  // An idle client that loses its connection (server restarted) must not crash the process: the
  // pool drops it and the next query opens a new one.
  pool.on('error', () => undefined);
  return pool;
}

/**
 * Runs `work` in one transaction on one pooled connection. `durable: false` commits without
 * waiting for the WAL flush (a claim or a lease renewal lost to a crash of the database is
 * simply redone; answers always wait).
 */
export async function inTransaction<T>(
  pool: pg.Pool,
  work: (tx: Queryable) => Promise<T>,
  opts: { durable?: boolean } = {},
): Promise<T> {
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query(
      opts.durable === false ? 'BEGIN; SET LOCAL synchronous_commit = off' : 'BEGIN',
    );
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    try {
      await client.query('ROLLBACK');
    } catch {
      broken = true; // the connection is gone: don't hand it out again
    }
    throw err;
  } finally {
    client.release(broken);
  }
}

/** A Uint8Array as the Buffer pg sends as bytea (inside arrays too). */
export const bytea = (bytes: Uint8Array | null): Buffer | null =>
  bytes === null ? null : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
