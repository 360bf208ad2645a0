/** `npm run bench`: every benchmark, each printing its figure as a ratio measured in the same run. */
import { runAdaptiveBench } from './adaptive.ts';
import { runCostBench } from './cost.ts';
import { runFairnessBench } from './fairness.ts';
import { runNativeBatchBench } from './native-batch.ts';
import { runOverheadBench } from './overhead.ts';
import { runPostgresBench } from './postgres.ts';
import { runRateLimitBench } from './rate-limit.ts';

const started = Date.now();
for (const bench of [
  runOverheadBench,
  runPostgresBench,
  runRateLimitBench,
  runAdaptiveBench,
  runFairnessBench,
  runCostBench,
  runNativeBatchBench,
]) {
  await bench();
  console.log('');
}
console.log(`benchmarks done in ${Math.round((Date.now() - started) / 1000)} s`);
