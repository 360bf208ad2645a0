/**
 * Overhead on PostgreSQL (issue 9): one `openbatch serve` on a durable PostgreSQL (fsync on, the
 * server's defaults) against the zero-latency simulator, versus the bare undici loop and versus
 * the same batch on the embedded SQLite store, in the same run. Prints the database's work per
 * line: statements (each one a round trip) and transactions, from pg_stat_statements and
 * pg_stat_database. BENCH_PG_LINES sets the size (default 100,000).
 */
import pg from 'pg';
import { createDatabase, startPostgres } from '../test/helpers/postgres-server.ts';
import { envInt, fmt, startSimulator } from './bench-helpers.ts';
import { chatLine } from './input-files.ts';
import { runMeasuredBatch } from './measured-batch.ts';
import { CONCURRENCY, measureBareRate, measureServer, printRunFigures } from './overhead.ts';
import { figure, heading, note } from './report.ts';

interface DatabaseWork {
  bytes: number;
  statements: number;
  transactions: number;
  top: { query: string; calls: number }[];
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function resetCounters(url: string): Promise<number> {
  return withClient(url, async (c) => {
    await c.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    await c.query('SELECT pg_stat_statements_reset()');
    const { rows } = await c.query<{ n: string }>(
      'SELECT xact_commit AS n FROM pg_stat_database WHERE datname = current_database()',
    );
    return Number(rows[0]?.n ?? 0);
  });
}

async function databaseWork(url: string, commitsBefore: number): Promise<DatabaseWork> {
  return withClient(url, async (c) => {
    // Give the statistics collector its moment (stats are flushed at transaction end).
    await new Promise((r) => setTimeout(r, 1_000));
    const db = `(SELECT oid FROM pg_database WHERE datname = current_database())`;
    const { rows } = await c.query<{ query: string; calls: string }>(
      `SELECT query, calls FROM pg_stat_statements WHERE dbid = ${db} ORDER BY calls DESC`,
    );
    const commits = await c.query<{ n: string }>(
      'SELECT xact_commit AS n FROM pg_stat_database WHERE datname = current_database()',
    );
    const size = await c.query<{ n: string }>('SELECT pg_database_size(current_database()) AS n');
    return {
      bytes: Number(size.rows[0]?.n ?? 0),
      statements: rows.reduce((sum, r) => sum + Number(r.calls), 0),
      transactions: Number(commits.rows[0]?.n ?? 0) - commitsBefore,
      top: rows.slice(0, 6).map((r) => ({ query: r.query, calls: Number(r.calls) })),
    };
  });
}

export async function runPostgresBench(): Promise<void> {
  const lines = envInt('BENCH_PG_LINES', 100_000);
  const server = await startPostgres({ durable: true, preload: ['pg_stat_statements'] });
  try {
    const bare = await measureBareRate(lines);
    const sqlite = await measureServer(lines);
    const url = await createDatabase(server.url, 'bench');
    const commitsBefore = await resetCounters(url);
    const sim = await startSimulator();
    let run;
    try {
      run = await runMeasuredBatch({
        simUrl: sim.url,
        lines,
        lineAt: chatLine,
        serverEnv: {
          OPENBATCH_UPSTREAM_MAX_CONCURRENCY: String(CONCURRENCY),
          OPENBATCH_DATABASE_URL: url,
        },
      });
    } finally {
      await sim.stop();
    }
    const work = await databaseWork(url, commitsBefore);
    heading(
      `postgres: ${fmt(lines)} chat lines, one process, durable PostgreSQL on loopback, concurrency ${CONCURRENCY}, zero-latency simulator`,
    );
    printRunFigures(run, bare);
    figure('PostgreSQL / SQLite (same batch, end to end)', run.seconds / sqlite.seconds, {
      unit: '×',
      digits: 2,
    });
    figure('SQLite end to end', lines / sqlite.seconds, { unit: ' req/s' });
    figure('database statements (round trips) per line', work.statements / lines, { digits: 3 });
    figure('database transactions per line', work.transactions / lines, { digits: 3 });
    figure('PostgreSQL database bytes per line (after completion)', work.bytes / lines);
    for (const t of work.top)
      note(`  ${fmt(t.calls)} calls`, t.query.replace(/\s+/g, ' ').slice(0, 110));
  } finally {
    await server.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await runPostgresBench();
