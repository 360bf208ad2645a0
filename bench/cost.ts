/**
 * Benchmark 6 — cost controls (issue 13), in one process against the simulator:
 *  1. prefix-aware order vs file order on a shared-prefix workload (documents asked several
 *     questions, file interleaved by question) with the simulator's prompt cache: the share of
 *     input tokens served from the cache and the cost, side by side (target ≥ 2× the share);
 *  2. the estimate's ETA against a measured rate-limited run (target: error ≤ 20%);
 *  3. the response cache: upstream calls for 400 lines that are 200 requests twice, then again.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createReadStream } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve } from '@hono/node-server';
import OpenAI from 'openai';
import { createServerRuntime } from '../src/compose.ts';
import { loadConfig } from '../src/config/config.ts';
import { silentLogger } from '../src/lib/logger.ts';
import { createSimulator, type SimulatorOptions } from '../src/simulator/simulator.ts';
import { envInt } from './bench-helpers.ts';
import { figure, heading, note } from './report.ts';

const DOCS = envInt('BENCH_COST_DOCS', 30);
const QUESTIONS = envInt('BENCH_COST_QUESTIONS', 8);
const PRICING = { 'gpt-4o-mini': { input: 0.15, cachedInput: 0.075, output: 0.6 } };

interface Run {
  client: OpenAI;
  baseURL: string;
  calls: () => number;
  close: () => Promise<void>;
}

async function start(
  sim: SimulatorOptions,
  env: Record<string, string>,
  upstream: object,
): Promise<Run> {
  const simulator = createSimulator(sim);
  const { url } = await simulator.listen(0);
  const dir = mkdtempSync(join(tmpdir(), 'openbatch-bench-cost-'));
  const configPath = join(dir, 'config.json');
  writeFileSync(
    configPath,
    JSON.stringify({
      upstreams: [{ name: 'sim', baseUrl: `${url}/v1`, pricing: PRICING, ...upstream }],
    }),
  );
  const config = loadConfig(
    { dataDir: join(dir, 'data'), port: 0, config: configPath },
    {
      OPENBATCH_TICK_MS: '50',
      ...env,
    },
  );
  const runtime = await createServerRuntime(config, silentLogger);
  const server = serve({ fetch: runtime.app.fetch, hostname: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  return {
    client: new OpenAI({ apiKey: 'bench', baseURL, maxRetries: 0 }),
    baseURL,
    calls: () => simulator.calls().filter((c) => c.path.endsWith('/chat/completions')).length,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await runtime.close();
      await simulator.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function upload(run: Run, lines: object[]): Promise<string> {
  const path = join(mkdtempSync(join(tmpdir(), 'openbatch-bench-cost-in-')), 'in.jsonl');
  writeFileSync(path, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  return (await run.client.files.create({ file: createReadStream(path), purpose: 'batch' })).id;
}

async function runBatch(
  run: Run,
  fileId: string,
): Promise<OpenAI.Batches.Batch & Record<string, any>> {
  const batch = await run.client.batches.create({
    input_file_id: fileId,
    endpoint: '/v1/chat/completions',
    completion_window: '24h',
  });
  for (let i = 0; i < 6_000; i++) {
    const b = await run.client.batches.retrieve(batch.id);
    if (['completed', 'failed', 'expired', 'cancelled'].includes(b.status)) return b;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`batch ${batch.id} did not finish`);
}

const chat = (id: string, content: string, extra: object = {}) => ({
  custom_id: id,
  method: 'POST',
  url: '/v1/chat/completions',
  body: { model: 'gpt-4o-mini', max_tokens: 32, messages: [{ role: 'user', content }], ...extra },
});

/** Documents of ~1,500 tokens, each asked QUESTIONS questions; the file goes question by question. */
function sharedPrefixLines(): object[] {
  const docs = Array.from({ length: DOCS }, (_, d) =>
    `Document ${d}: `.padEnd(6_000, ` clause ${d} of the contract under review,`),
  );
  const lines: object[] = [];
  for (let q = 0; q < QUESTIONS; q++)
    for (let d = 0; d < DOCS; d++)
      lines.push(chat(`d${d}-q${q}`, `${docs[d]}\n\nQuestion ${q}: what does clause ${q} say?`));
  return lines;
}

async function prefixOrder(): Promise<void> {
  heading(
    `Cost 1 — prefix-aware order vs file order (${DOCS} documents × ${QUESTIONS} questions, simulated prompt cache of 8 prompts)`,
  );
  const shares: number[] = [];
  for (const order of ['off', 'on']) {
    const run = await start(
      { latencyMs: 30, prefixCache: { entries: 8 } },
      { OPENBATCH_PREFIX_ORDER: order },
      {},
    );
    try {
      const done = await runBatch(run, await upload(run, sharedPrefixLines()));
      const share = done.usage!.input_tokens_details.cached_tokens / done.usage!.input_tokens;
      shares.push(share);
      const label = order === 'on' ? 'prefix-aware order' : 'file order';
      figure(`${label}: cached-token share`, share * 100, { unit: '%', digits: 1 });
      figure(`${label}: cost`, done.cost?.charged ?? NaN, { unit: ' USD', digits: 5 });
    } finally {
      await run.close();
    }
  }
  const [fileShare, prefixShare] = shares as [number, number];
  if (fileShare === 0)
    note(
      'cached-token share, prefix-aware / file order',
      prefixShare > 0
        ? '∞ (file order had no cached tokens; target ≥ 2×)'
        : 'both 0: MISSED (target ≥ 2×)',
    );
  else
    figure('cached-token share, prefix-aware / file order', prefixShare / fileShare, {
      unit: '×',
      digits: 1,
      atLeast: 2,
    });
}

async function etaError(): Promise<void> {
  const rpm = 3_000;
  const lines = envInt('BENCH_COST_ETA_LINES', 300);
  heading(`Cost 2 — estimate ETA vs a measured run (${lines} lines, ${rpm} RPM simulator)`);
  const run = await start({ rpm, latencyMs: 20 }, {}, { rpm });
  try {
    const fileId = await upload(
      run,
      Array.from({ length: lines }, (_, i) => chat(`e-${i}`, `line ${i}`)),
    );
    const res = await fetch(`${run.baseURL}/files/${fileId}/estimate`, {
      headers: { authorization: 'Bearer bench' },
    });
    const eta = ((await res.json()) as { eta_seconds: number }).eta_seconds;
    const started = Date.now();
    await runBatch(run, fileId);
    const actual = (Date.now() - started) / 1000;
    figure('estimated ETA', eta, { unit: ' s', digits: 2 });
    figure('measured', actual, { unit: ' s', digits: 2 });
    figure('ETA error', (Math.abs(eta - actual) / actual) * 100, {
      unit: '%',
      digits: 1,
      atMost: 20,
    });
  } finally {
    await run.close();
  }
}

async function responseCache(): Promise<void> {
  heading(
    'Cost 3 — response cache (OPENBATCH_CACHE=on): 400 lines = 200 requests twice, then the same batch again',
  );
  const run = await start({ latencyMs: 20 }, { OPENBATCH_CACHE: 'on' }, {});
  try {
    const lines = Array.from({ length: 400 }, (_, i) =>
      chat(`c-${i}`, `question ${i % 200}`, { temperature: 0 }),
    );
    const fileId = await upload(run, lines);
    await runBatch(run, fileId);
    figure('upstream calls, first batch', run.calls(), { atMost: 200 });
    const before = run.calls();
    const again = await runBatch(run, fileId);
    figure('upstream calls, same batch again', run.calls() - before, { exactly: 0 });
    figure('cost of the second batch', again.cost?.charged ?? NaN, {
      unit: ' USD',
      digits: 5,
      exactly: 0,
    });
  } finally {
    await run.close();
  }
}

export async function runCostBench(): Promise<void> {
  await prefixOrder();
  await etaError();
  await responseCache();
}

if (import.meta.url === `file://${process.argv[1]}`) await runCostBench();
