import { readFileSync, rmSync, writeFileSync } from 'node:fs';

/**
 * Claims `path` for this process. A lock left by a process that no longer runs (kill -9) is
 * taken over; one held by a live process is refused, so two servers never share a data dir.
 */
export function acquirePidLock(path: string): () => void {
  try {
    writeFileSync(path, String(process.pid), { flag: 'wx', mode: 0o600 });
  } catch {
    const holder = Number(readFileSync(path, 'utf8'));
    if (Number.isInteger(holder) && holder !== process.pid && isAlive(holder)) {
      throw new Error(
        `another openbatch process (pid ${holder}) is using this data directory (${path})`,
      );
    }
    writeFileSync(path, String(process.pid), { mode: 0o600 });
  }
  return () => rmSync(path, { force: true });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
