import cliProgress from 'cli-progress';
import type { CliIo } from './io.ts';

/** One look at a running job or batch. */
export interface ProgressSnapshot {
  done: number;
  failed: number;
  total: number;
  tokens: number;
  /** Batch-price dollars so far; null when the model has no known price. */
  costUsd: number | null;
}

/** Shows a job's progress until stopped. */
export interface ProgressDisplay {
  update(snapshot: ProgressSnapshot): void;
  /** Prints the final state and releases the terminal line. */
  stop(): void;
}

/** How progress is shown. */
export interface ProgressDisplayOptions {
  /** A live bar on stderr; otherwise plain lines, at most one per `intervalMs`. */
  tty: boolean;
  /** @default 2_000 */
  intervalMs?: number | undefined;
  label?: string | undefined;
}

/**
 * Progress on stderr (stdout stays clean for results and --json): a cli-progress bar when
 * stderr is a terminal, else periodic plain lines — done, failed, rate, ETA, tokens, cost.
 */
export function createProgressDisplay(io: CliIo, options: ProgressDisplayOptions): ProgressDisplay {
  const rate = rateMeter();
  return options.tty
    ? barDisplay(rate, options.label ?? 'progress')
    : lineDisplay(io, rate, options);
}

function barDisplay(rate: RateMeter, label: string): ProgressDisplay {
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${label} {bar} {percentage}% | {done}/{total_text} done | {failed} failed | {rate}/s | ETA {eta_text} | {tokens} tokens | {cost}`,
      hideCursor: true,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update: (s) => {
      const payload = payloadOf(s, rate.add(s.done));
      if (!started) bar.start(Math.max(s.total, 1), s.done, payload);
      else {
        bar.setTotal(Math.max(s.total, 1));
        bar.update(s.done, payload);
      }
      started = true;
    },
    stop: () => {
      if (started) bar.stop();
    },
  };
}

function lineDisplay(io: CliIo, rate: RateMeter, options: ProgressDisplayOptions): ProgressDisplay {
  const intervalMs = options.intervalMs ?? 2_000;
  let last: ProgressSnapshot | null = null;
  let printed: ProgressSnapshot | null = null;
  let printedAt = -Infinity;
  const print = (s: ProgressSnapshot): void => {
    const p = payloadOf(s, rate.add(s.done));
    const pct = s.total > 0 ? Math.floor((s.done / s.total) * 100) : 0;
    io.stderr(
      `${options.label ?? 'progress'}: ${p.done}/${p.total_text} done (${pct}%), ${p.failed} failed, ${p.rate}/s, ETA ${p.eta_text}, ${p.tokens} tokens, ${p.cost}\n`,
    );
    printed = s;
    printedAt = Date.now();
  };
  return {
    update: (s) => {
      last = s;
      if (Date.now() - printedAt >= intervalMs) print(s);
    },
    stop: () => {
      // The bar may sit at 100% for a few polls while batches finalize: print the end once.
      if (last && (last.done !== printed?.done || last.failed !== printed.failed)) print(last);
    },
  };
}

interface RateMeter {
  /** Records `done` now and returns lines per second since the first record. */
  add(done: number): number;
}

function rateMeter(): RateMeter {
  let first: { atMs: number; done: number } | null = null;
  return {
    add: (done) => {
      const now = Date.now();
      first ??= { atMs: now, done };
      const seconds = (now - first.atMs) / 1000;
      return seconds > 0 ? (done - first.done) / seconds : 0;
    },
  };
}

function payloadOf(s: ProgressSnapshot, perSecond: number) {
  const remaining = Math.max(0, s.total - s.done);
  const eta = perSecond > 0 ? remaining / perSecond : null;
  return {
    done: s.done.toLocaleString('en-US'),
    total_text: s.total.toLocaleString('en-US'),
    failed: s.failed.toLocaleString('en-US'),
    rate: perSecond >= 10 ? Math.round(perSecond).toLocaleString('en-US') : perSecond.toFixed(1),
    eta_text: remaining === 0 ? '0s' : eta === null ? '?' : formatDuration(eta),
    tokens: s.tokens.toLocaleString('en-US'),
    cost: s.costUsd === null ? '$?' : `$${s.costUsd.toFixed(4)}`,
  };
}

/** 75 → "1m15s", 3700 → "1h01m". */
export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
