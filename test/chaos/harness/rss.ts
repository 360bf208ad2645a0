/** Resident-memory sampling of a child process from /proc (Linux). */
import { readFileSync } from 'node:fs';

/** VmRSS and VmHWM (peak) of `pid` in bytes; null when /proc is not readable (process gone). */
export function memoryOf(pid: number): { rss: number; hwm: number } | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) =>
      Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
    return { rss: kb('VmRSS') * 1024, hwm: kb('VmHWM') * 1024 };
  } catch {
    return null;
  }
}

export const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

/**
 * Polls a process's memory every `everyMs` and keeps the peak per phase (the caller names the
 * current phase), plus the kernel's own high-water mark (VmHWM) as a cross-check.
 */
export class RssSampler {
  readonly #pid: number;
  readonly #timer: NodeJS.Timeout;
  #phase = 'start';
  readonly peaks = new Map<string, number>();
  hwm = 0;

  constructor(pid: number, everyMs = 200) {
    this.#pid = pid;
    this.#timer = setInterval(() => this.sample(), everyMs);
    this.#timer.unref();
  }

  phase(name: string): void {
    this.sample();
    this.#phase = name;
  }

  sample(): void {
    const m = memoryOf(this.#pid);
    if (m === null) return;
    this.peaks.set(this.#phase, Math.max(this.peaks.get(this.#phase) ?? 0, m.rss));
    this.hwm = Math.max(this.hwm, m.hwm);
  }

  stop(): void {
    this.sample();
    clearInterval(this.#timer);
  }

  get peak(): number {
    return Math.max(this.hwm, ...this.peaks.values());
  }

  summary(): string {
    const phases = [...this.peaks].map(([p, v]) => `${p} ${mib(v)}`).join(', ');
    return `peak RSS ${mib(this.peak)} (VmHWM ${mib(this.hwm)}; by phase: ${phases})`;
  }
}
