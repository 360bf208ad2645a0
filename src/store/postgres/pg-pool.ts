import pg from 'pg';

/** What both a pool and a client in a transaction can run. */
export type Queryable = Pick<pg.PoolClient, 'query'>;

// Times are epoch ms and counters fit in 2^53: BIGINT and NUMERIC (SUM) come back as numbers.
const INT8_OID = 20;
const NUMERIC_OID = 1700;
const toNumber = (value: string): number => Number(value);
const types = {
  getTypeParser: (oid: number, format?: 'text' | 'binary'): unknown =>
    oid === INT8_OID || oid === NUMERIC_OID ? toNumber : pg.types.getTypeParser(oid, format),
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
  // A checked-out client whose server goes away emits 'error'; unheard, it would crash the
  // process. The query in progress fails on its own; the client is not reused.
  const onError = (): void => {
    broken = true;
  };
  client.on('error', onError);
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
    client.off('error', onError);
    client.release(broken);
  }
}

/** A Uint8Array as the Buffer pg sends as bytea (inside arrays too). */
export const bytea = (bytes: Uint8Array | null): Buffer | null =>
  bytes === null ? null : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

// SQLSTATE classes and codes that mean "the database is not there right now", not "bad query":
// 08 connection exceptions, 57P01-57P03 shutdown / cannot connect now, 53300 too many connections.
const UNAVAILABLE_STATES = /^(08|57P0[1-3]|53300)/;
const UNAVAILABLE_MESSAGES =
  /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|EPIPE|Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Query read timeout/i;

/** True when `err` says the database is unreachable (the caller may simply try again later). */
export function isUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && UNAVAILABLE_STATES.test(code)) return true;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code) && UNAVAILABLE_MESSAGES.test(code))
    return true;
  return UNAVAILABLE_MESSAGES.test(err.message);
}
