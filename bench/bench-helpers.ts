import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..');

/** A child `openbatch` process and the URL it printed once ready. */
export interface Child {
  proc: ChildProcess;
  url: string;
  stop(): Promise<void>;
  output(): string;
}

/** Spawns `openbatch <args>` and waits for a line matching `ready` (its first group is the URL). */
export async function spawnOpenbatch(
  args: string[],
  env: Record<string, string>,
  ready: RegExp,
): Promise<Child> {
  // BENCH_PROFILE_DIR=dir writes a CPU profile of each `openbatch serve` child there.
  const profileDir = process.env.BENCH_PROFILE_DIR;
  const nodeArgs =
    profileDir && args[0] === 'serve' ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  const proc = spawn(process.execPath, [...nodeArgs, join(ROOT, 'bin', 'openbatch.js'), ...args], {
    cwd: ROOT,
    env: { ...process.env, OPENBATCH_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready in 60 s:\n${out}`)), 60_000);
    proc.stdout.on('data', () => {
      const m = ready.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    void exited.then(() => reject(new Error(`exited early:\n${out}`)));
  });
  return {
    proc,
    url,
    output: () => out,
    stop: async () => {
      proc.kill('SIGTERM');
      await exited;
    },
  };
}

export const fmt = (n: number, digits = 0): string =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

const SIMULATOR_READY = /listening on (http:\/\/\S+)\/v1/;
const SERVER_READY = /openbatch listening on (http:\/\/\S+\/v1)/;

/** `openbatch simulate` on a free port; its `url` has no /v1. */
export const startSimulator = (args: string[] = []): Promise<Child> =>
  spawnOpenbatch(['simulate', '--port', '0', ...args], {}, SIMULATOR_READY);

/** `openbatch serve` on a free port against the simulator at `simUrl`; its `url` ends in /v1. */
export const startServer = (
  dataDir: string,
  simUrl: string,
  env: Record<string, string> = {},
): Promise<Child> =>
  spawnOpenbatch(
    ['serve', '--port', '0', '--data-dir', dataDir],
    { OPENBATCH_UPSTREAM_URL: `${simUrl}/v1`, OPENBATCH_TICK_MS: '100', ...env },
    SERVER_READY,
  );

/** Runs `fn` with a fresh temporary directory and removes it afterwards, whatever happens. */
export async function withTempDir<T>(prefix: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), `openbatch-bench-${prefix}-`));
  try {
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A positive integer from the environment, or `fallback` when unset. */
export function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw.replaceAll('_', ''));
  if (!Number.isInteger(n) || n <= 0)
    throw new Error(`${name}: expected a positive integer, got '${raw}'`);
  return n;
}
