import { spawn, type ChildProcess } from 'node:child_process';
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
