/**
 * Benchmark — native batch passthrough (issue 10). One workload (chat lines for gpt-4o-mini) run
 * three ways against the simulator: `realtime` (every line a real-time call), `native` (the
 * simulator's Batch API, split under an enqueued-token limit and staged) and `auto` (probes the
 * Batch API and picks it). Prints turnaround and cost at the prices actually charged: standard
 * for real-time lines, the model's batch price for lines that ran natively.
 */
import { join } from 'node:path';
import { fmt, spawnOpenbatch, withTempDir } from './bench-helpers.ts';
import { runBatchThrough } from './run-batch.ts';
import { createSimulator } from '../src/simulator/simulator.ts';
import { costOf, priceForModel } from '../src/sdk/pricing.ts';
import type { TokenUsage } from '../src/protocol/token-usage.ts';

const LINES = Number(process.env.BENCH_NATIVE_LINES ?? 2_000);
const MODEL = 'gpt-4o-mini';
const TURNAROUND_MS = Number(process.env.BENCH_NATIVE_TURNAROUND_MS ?? 4_000);

const lines = Array.from({ length: LINES }, (_, i) => ({
  custom_id: `n-${i}`,
  method: 'POST',
  url: '/v1/chat/completions',
  body: {
    model: MODEL,
    messages: [{ role: 'user', content: `Summarise paragraph ${i} of the annual report.` }],
    max_tokens: 64,
  },
}));

interface Execution {
  mode: string;
  reason: string;
  native_usage?: TokenUsage;
}

function usageOf(batch: { usage?: unknown }): TokenUsage {
  const u = batch.usage as {
    input_tokens: number;
    output_tokens: number;
    total_tokens: number;
    input_tokens_details?: { cached_tokens?: number };
    output_tokens_details?: { reasoning_tokens?: number };
  };
  return {
    input_tokens: u.input_tokens,
    cached_tokens: u.input_tokens_details?.cached_tokens ?? 0,
    output_tokens: u.output_tokens,
    reasoning_tokens: u.output_tokens_details?.reasoning_tokens ?? 0,
    total_tokens: u.total_tokens,
  };
}

/** Dollars at the prices charged: native usage at the batch price, the rest at the standard one. */
function chargedCost(usage: TokenUsage, native: TokenUsage | undefined): number {
  const price = priceForModel(MODEL);
  if (!price) return Number.NaN;
  const n = native ?? {
    input_tokens: 0,
    cached_tokens: 0,
    output_tokens: 0,
    reasoning_tokens: 0,
    total_tokens: 0,
  };
  const rest: TokenUsage = {
    input_tokens: usage.input_tokens - n.input_tokens,
    cached_tokens: usage.cached_tokens - n.cached_tokens,
    output_tokens: usage.output_tokens - n.output_tokens,
    reasoning_tokens: usage.reasoning_tokens - n.reasoning_tokens,
    total_tokens: usage.total_tokens - n.total_tokens,
  };
  return costOf(rest, price).standard.total + costOf(n, price).batch.total;
}

async function scenario(mode: 'realtime' | 'native' | 'auto'): Promise<void> {
  await withTempDir(`native-${mode}`, async (dir) => {
    const sim = createSimulator({
      latencyMs: 150,
      latencyJitterMs: 50,
      rpm: 30_000,
      batchApi: { turnaroundMs: TURNAROUND_MS, queueTokens: { [MODEL]: 40_000 } },
    });
    const { url } = await sim.listen(0);
    const server = await spawnOpenbatch(
      ['serve', '--port', '0', '--data-dir', join(dir, 'data')],
      {
        OPENBATCH_UPSTREAM_URL: `${url}/v1`,
        OPENBATCH_UPSTREAM_MAX_CONCURRENCY: '32',
        OPENBATCH_UPSTREAM_BATCH_MODE: mode,
        OPENBATCH_UPSTREAM_BATCH_POLL_MS: '250',
        OPENBATCH_UPSTREAM_BATCH_MAX_POLL_MS: '1000',
        OPENBATCH_TICK_MS: '100',
      },
      /openbatch listening on (http:\/\/\S+\/v1)/,
    );
    try {
      const run = await runBatchThrough(server.url, lines, join(dir, 'in.jsonl'));
      const execution = (run.batch as unknown as { execution?: Execution }).execution;
      const usage = usageOf(run.batch);
      const cost = chargedCost(usage, execution?.native_usage);
      const standard = chargedCost(usage, undefined);
      const realtimeCalls = sim.calls().filter((c) => c.path.endsWith('/chat/completions')).length;
      const subBatches = sim.upstreamBatches().filter((b) => b.status === 'completed').length;
      console.log(
        `  ${mode.padEnd(8)} ${run.batch.status}: turnaround ${fmt((run.endedMs - run.startedMs) / 1000, 1)} s, ` +
          `cost $${fmt(cost, 4)} (all at standard: $${fmt(standard, 4)}, saved ${fmt((100 * (standard - cost)) / standard, 0)}%), ` +
          `${fmt(realtimeCalls)} real-time calls, ${subBatches} sub-batches — ${execution?.reason ?? ''}`,
      );
    } finally {
      await server.stop();
      await sim.close();
    }
  });
}

export async function runNativeBatchBench(): Promise<void> {
  console.log(
    `native batch passthrough: ${fmt(LINES)} ${MODEL} lines; real-time 150 ms/call, Batch API turnaround ${fmt(TURNAROUND_MS / 1000, 1)} s, 40,000 enqueued tokens`,
  );
  for (const mode of ['realtime', 'native', 'auto'] as const) await scenario(mode);
}

if (import.meta.url === `file://${process.argv[1]}`) await runNativeBatchBench();
