/**
 * Benchmark 3 — adaptive concurrency. The simulator as a header-less server with fixed capacity:
 * N parallel slots, a queue, 503 when the queue is full, latency rising with load. Prints the
 * achieved throughput divided by the capacity, and failed lines.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fmt, spawnOpenbatch } from './bench-helpers.ts';
import { runBatchThrough } from './run-batch.ts';
import { readCallLog } from './sim-log.ts';

const LINES = Number(process.env.BENCH_ADAPTIVE_LINES ?? 3_000);
const SLOTS = 16;
const QUEUE = 16;
const LATENCY_MS = 100;

export async function runAdaptiveBench(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'openbatch-bench-aimd-'));
  const log = join(dir, 'calls.jsonl');
  const sim = await spawnOpenbatch(
    [
      'simulate',
      '--port',
      '0',
      '--slots',
      String(SLOTS),
      '--queue',
      String(QUEUE),
      '--latency-ms',
      String(LATENCY_MS),
      '--log',
      log,
    ],
    {},
    /listening on (http:\/\/\S+)\/v1/,
  );
  // The ceiling is far above what the server can take: the limit has to be found, not configured.
  const server = await spawnOpenbatch(
    ['serve', '--port', '0', '--data-dir', join(dir, 'data')],
    {
      OPENBATCH_UPSTREAM_URL: `${sim.url}/v1`,
      OPENBATCH_UPSTREAM_MAX_CONCURRENCY: '256',
      OPENBATCH_TICK_MS: '100',
    },
    /openbatch listening on (http:\/\/\S+\/v1)/,
  );
  try {
    const lines = Array.from({ length: LINES }, (_, i) => ({
      custom_id: `r-${i}`,
      method: 'POST',
      url: '/v1/chat/completions',
      body: {
        model: 'llama-3.1-8b',
        messages: [{ role: 'user', content: `Classify review ${i}` }],
        max_tokens: 16,
      },
    }));
    const { batch } = await runBatchThrough(server.url, lines, join(dir, 'input.jsonl'));
    await sim.stop();
    const calls = readCallLog(log);
    const served = calls.filter((c) => c.status === 200);
    const spanS = (served.at(-1)!.atMs - calls[0]!.atMs) / 1000 + (LATENCY_MS * 1.5) / 1000;
    // Full load: every slot busy at the simulator's loaded latency (latency × 1.5 with all slots active).
    const capacity = SLOTS / ((LATENCY_MS * 1.5) / 1000);
    const achieved = served.length / spanS;
    const overloaded = calls.filter((c) => c.status === 503).length;
    console.log(
      `adaptive concurrency: ${fmt(LINES)} lines, header-less simulator with ${SLOTS} slots + ${QUEUE} queue, ${LATENCY_MS} ms base latency`,
    );
    console.log(
      `  achieved ${fmt(achieved, 1)} req/s vs capacity ${fmt(capacity, 1)} req/s → ${fmt(achieved / capacity, 3)}× (target ≥ 0.9×)`,
    );
    console.log(
      `  503s: ${overloaded} of ${calls.length} sends; failed lines: ${batch.request_counts?.failed ?? '?'} (target 0); status ${batch.status}`,
    );
  } finally {
    await server.stop();
    await sim.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await runAdaptiveBench();
