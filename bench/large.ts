/**
 * `npm run bench:large`: the scenarios that take minutes. Scale at 1,000,000 lines with and
 * without an upstream that sends OpenAI's rate-limit headers (with them the server learns a token
 * limit and loads its tokenizer), each against the bare loop and against its own 20,000-line run
 * in the same run; a batch of large vision lines; and a cancel of a large batch under /health
 * probes. BENCH_LARGE_SCENARIOS=scale,headers,vision,cancel picks some.
 */
import { envInt, fmt } from './bench-helpers.ts';
import { runCancelStallBench } from './cancel-stall.ts';
import { visionLine } from './input-files.ts';
import { measureBareRate, measureServer, perLineMs, printRunFigures } from './overhead.ts';
import { figure, heading } from './report.ts';

const LARGE_LINES = envInt('BENCH_LARGE_LINES', 1_000_000);
const REFERENCE_LINES = envInt('BENCH_REFERENCE_LINES', 20_000);
const VISION_LINES = envInt('BENCH_VISION_LINES', 300);
const VISION_IMAGE_KIB = envInt('BENCH_VISION_IMAGE_KIB', 600);
const PER_LINE_TARGET = 1.3;
// Limits far above what the server can send, so the headers are present but never throttle.
const HEADER_SIM_ARGS = ['--rpm', '10000000', '--tpm', '10000000000'];

let bareRateAtLarge: number | undefined;

/** The bare loop at LARGE_LINES, measured once per run and shared by both scale scenarios. */
async function bareRate(): Promise<number> {
  bareRateAtLarge ??= await measureBareRate(LARGE_LINES);
  return bareRateAtLarge;
}

async function scaleScenario(label: string, simArgs: string[]): Promise<void> {
  const bare = await bareRate();
  const reference = await measureServer(REFERENCE_LINES, simArgs);
  const run = await measureServer(LARGE_LINES, simArgs);
  heading(
    `scale: ${fmt(LARGE_LINES)} chat lines, concurrency 64, simulator at zero latency, ${label}`,
  );
  printRunFigures(run, bare);
  figure(`per-line time at ${fmt(REFERENCE_LINES)} lines (same simulator)`, perLineMs(reference), {
    unit: ' ms',
    digits: 3,
  });
  figure(
    `per-line time ratio ${fmt(LARGE_LINES)} / ${fmt(REFERENCE_LINES)}`,
    perLineMs(run) / perLineMs(reference),
    { unit: '×', digits: 2, atMost: PER_LINE_TARGET },
  );
}

async function visionScenario(): Promise<void> {
  const imageBytes = VISION_IMAGE_KIB * 1024;
  const run = await measureServer(VISION_LINES, [], (i) => visionLine(i, imageBytes));
  heading(
    `vision: ${fmt(VISION_LINES)} chat lines, each with a ${fmt(VISION_IMAGE_KIB)} KiB base64 image data URL (${fmt(run.inputBytes / 1e6)} MB file)`,
  );
  printRunFigures(run, null);
}

const SCENARIOS: Record<string, () => Promise<void>> = {
  scale: () => scaleScenario('no rate-limit headers', []),
  headers: () =>
    scaleScenario(
      'x-ratelimit-* headers (rpm 10,000,000, tpm 10,000,000,000; bare loop without them)',
      HEADER_SIM_ARGS,
    ),
  vision: visionScenario,
  cancel: runCancelStallBench,
};

const chosen = (process.env.BENCH_LARGE_SCENARIOS ?? Object.keys(SCENARIOS).join(',')).split(',');
const started = Date.now();
for (const name of chosen) {
  const scenario = SCENARIOS[name];
  if (!scenario) throw new Error(`BENCH_LARGE_SCENARIOS: unknown scenario '${name}'`);
  await scenario();
}
console.log(`\nlarge benchmarks done in ${Math.round((Date.now() - started) / 1000)} s`);
