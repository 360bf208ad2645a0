/**
 * A real PostgreSQL server for tests and benchmarks: a throw-away cluster in a temporary
 * directory, started with Debian's binaries (`apt-get install postgresql`, which .ci/run does on
 * a machine without them) on a free loopback port. As root, the cluster runs as the `postgres`
 * user (the server refuses to run as root).
 */
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export interface PostgresServer {
  /** postgres://… of the `postgres` database (create your own with `createDatabase`). */
  url: string;
  dataDir: string;
  /** pg_ctl with the cluster's options, as the cluster's owner (e.g. `['stop', '-m', 'fast']`). */
  ctl(args: string[]): void;
  stop(): Promise<void>;
}

/** The newest PostgreSQL server binaries on this machine, or null. */
export function findPostgresBin(): string | null {
  if (process.env.OPENBATCH_PG_BIN) return process.env.OPENBATCH_PG_BIN;
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'postgres')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], 'bin') : null;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts a cluster. `durable: false` (tests) turns fsync off: the tests prove logic, not the
 * disk; benchmarks keep PostgreSQL's durable defaults.
 */
export async function startPostgres(
  opts: { durable?: boolean; preload?: string[] } = {},
): Promise<PostgresServer> {
  const bin = findPostgresBin();
  if (!bin)
    throw new Error(
      'PostgreSQL server binaries not found: install them with `apt-get install -y postgresql` ' +
        '(.ci/run does this), or set OPENBATCH_PG_BIN to the directory holding `postgres`.',
    );
  const dir = mkdtempSync(join(tmpdir(), 'openbatch-pg-'));
  const asOwner = ownerCommand(dir);
  const dataDir = join(dir, 'data');
  asOwner(join(bin, 'initdb'), [
    '-D',
    dataDir,
    '-U',
    'postgres',
    '--auth=trust',
    '-E',
    'UTF8',
    '--no-sync',
  ]);
  const port = await freePort();
  const settings = [
    `-p ${port}`,
    `-k ${dir}`,
    '-c listen_addresses=127.0.0.1',
    '-c max_connections=300',
    ...(opts.preload ? [`-c shared_preload_libraries=${opts.preload.join(',')}`] : []),
    ...(opts.durable
      ? []
      : ['-c fsync=off', '-c synchronous_commit=off', '-c full_page_writes=off']),
  ].join(' ');
  const ctl = (args: string[]): void =>
    asOwner(join(bin, 'pg_ctl'), ['-D', dataDir, '-o', settings, '-l', join(dir, 'log'), ...args]);
  ctl(['-w', 'start']);
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    dataDir,
    ctl,
    stop: async () => {
      try {
        ctl(['-m', 'immediate', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/** Runs commands as the owner of `dir`: `postgres` when we are root, else ourselves. */
function ownerCommand(dir: string): (file: string, args: string[]) => void {
  const root = process.getuid?.() === 0;
  if (root) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    chownSync(dir, uid, gid);
  }
  return (file, args) => {
    const [cmd, argv] = root ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, args];
    execFileSync(cmd, argv, { stdio: 'pipe' });
  };
}

/** Creates a database of its own for one test file; returns its URL. */
export async function createDatabase(serverUrl: string, prefix = 't'): Promise<string> {
  const name = `${prefix}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}
