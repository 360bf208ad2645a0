/**
 * Benchmark 1 — overhead. The simulator with zero latency and no limits; a chat batch through
 * `openbatch serve` end to end (upload → completed → output downloaded) versus a bare loop of
 * undici `request` calls with the same concurrency against the simulator, in the same run, at
 * each size in BENCH_SIZES (default 20,000 and 100,000 lines; BENCH_LINES=n runs one size).
 */
import { bareLoopRate } from './bare-loop.ts';
import { envInt, fmt, startSimulator } from './bench-helpers.ts';
import { chatLine, type RequestLine } from './input-files.ts';
import { runMeasuredBatch, type BatchRun } from './measured-batch.ts';
import { figure, heading, note } from './report.ts';

export const CONCURRENCY = 64;
const DEFAULT_SIZES = [20_000, 100_000];
const OVERHEAD_TARGET = 0.6;
const DISK_TARGET = 1.3;
const RSS_TARGET_MIB = 256;

function sizesFromEnv(): number[] {
  const listed = process.env.BENCH_SIZES;
  if (listed) return listed.split(',').map((n) => Number(n.replaceAll('_', '')));
  return process.env.BENCH_LINES ? [envInt('BENCH_LINES', 0)] : DEFAULT_SIZES;
}

/** The bare loop at `lines`, against a simulator of its own so its call log starts empty. */
export async function measureBareRate(lines: number): Promise<number> {
  const sim = await startSimulator();
  try {
    return await bareLoopRate(sim.url, lines, CONCURRENCY);
  } finally {
    await sim.stop();
  }
}

/** One batch through the server against a fresh simulator started with `simArgs`. */
export async function measureServer(
  lines: number,
  simArgs: string[] = [],
  lineAt: (i: number) => RequestLine = chatLine,
): Promise<BatchRun> {
  const sim = await startSimulator(simArgs);
  try {
    return await runMeasuredBatch({
      simUrl: sim.url,
      lines,
      lineAt,
      serverEnv: { OPENBATCH_UPSTREAM_MAX_CONCURRENCY: String(CONCURRENCY) },
    });
  } finally {
    await sim.stop();
  }
}

export const perLineMs = (run: BatchRun): number => (run.seconds * 1000) / run.lines;

/** The figures every scale scenario prints; `bareRate` is null where no bare loop applies. */
export function printRunFigures(run: BatchRun, bareRate: number | null): void {
  const rate = run.lines / run.seconds;
  if (bareRate !== null) {
    figure('bare undici loop', bareRate, { unit: ' req/s' });
    figure('openbatch end to end', rate, { unit: ' req/s' });
    figure('overhead ratio (openbatch / bare)', rate / bareRate, {
      unit: '×',
      digits: 2,
      atLeast: OVERHEAD_TARGET,
    });
  }
  note('phases', phasesText(run));
  figure('per-line time', perLineMs(run), { unit: ' ms', digits: 3 });
  figure('server CPU per 1,000 lines', (run.serverCpuSeconds * 1000) / run.lines, {
    unit: ' s',
    digits: 3,
  });
  figure('database bytes per line', run.databaseBytes / run.lines, { unit: ' B' });
  figure('disk / (input + output)', run.dataDirBytes / (run.inputBytes + run.outputBytes), {
    unit: '×',
    digits: 2,
    atMost: DISK_TARGET,
  });
  note('sizes', sizesText(run));
  figure('peak RSS of the server', run.peakRssMiB, { unit: ' MiB', atMost: RSS_TARGET_MIB });
}

function phasesText(run: BatchRun): string {
  const p = run.phases;
  const s = (seconds: number): string => `${fmt(seconds, 1)} s`;
  return (
    `upload ${s(p.upload)}, validating ${s(p.validating)}, in_progress ${s(p.inProgress)}, ` +
    `finalizing ${s(p.finalizing)}, download ${s(p.download)} (total ${s(run.seconds)})`
  );
}

function sizesText(run: BatchRun): string {
  const mb = (bytes: number): string => `${fmt(bytes / 1e6, 1)} MB`;
  return (
    `data dir ${mb(run.dataDirBytes)} (database ${mb(run.databaseBytes)}), ` +
    `input ${mb(run.inputBytes)}, output ${mb(run.outputBytes)}`
  );
}

export async function runOverheadBench(): Promise<void> {
  for (const lines of sizesFromEnv()) {
    const bareRate = await measureBareRate(lines);
    const run = await measureServer(lines);
    heading(
      `overhead: ${fmt(lines)} chat lines, concurrency ${CONCURRENCY}, simulator at zero latency, no rate-limit headers`,
    );
    printRunFigures(run, bareRate);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await runOverheadBench();
