/**
 * Benchmark 1 — overhead. The simulator with zero latency and no limits; a chat batch through
 * `openbatch serve` end to end (upload → completed → output downloaded) versus a bare loop of
 * undici `request` calls with the same concurrency against the same simulator, in the same run.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { fmt, spawnOpenbatch } from './bench-helpers.ts';

const LINES = Number(process.env.BENCH_LINES ?? 100_000);
const CONCURRENCY = 64;

const body = (i: number) => ({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: `Summarise document ${i} in one line.` }],
  max_tokens: 32,
});

async function bareLoop(simUrl: string): Promise<number> {
  const pool = new Pool(simUrl, { connections: CONCURRENCY });
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < LINES) {
        const i = next++;
        const res = await pool.request({
          method: 'POST',
          path: '/v1/chat/completions',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body(i)),
        });
        await res.body.text();
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  await pool.close();
  return LINES / seconds;
}

async function throughOpenbatch(simUrl: string): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'openbatch-bench-'));
  const input = join(dir, 'input.jsonl');
  writeFileSync(
    input,
    Array.from({ length: LINES }, (_, i) =>
      JSON.stringify({
        custom_id: `r-${i}`,
        method: 'POST',
        url: '/v1/chat/completions',
        body: body(i),
      }),
    ).join('\n') + '\n',
  );
  const server = await spawnOpenbatch(
    ['serve', '--port', '0', '--data-dir', join(dir, 'data')],
    {
      OPENBATCH_UPSTREAM_URL: `${simUrl}/v1`,
      OPENBATCH_UPSTREAM_MAX_CONCURRENCY: String(CONCURRENCY),
      OPENBATCH_MAX_LINES: String(Math.max(LINES, 50_000)),
      OPENBATCH_TICK_MS: '100',
    },
    /openbatch listening on (http:\/\/\S+\/v1)/,
  );
  const { default: OpenAI } = await import('openai');
  const { createReadStream } = await import('node:fs');
  const client = new OpenAI({ apiKey: 'bench', baseURL: server.url, maxRetries: 0 });
  const started = performance.now();
  const file = await client.files.create({ file: createReadStream(input), purpose: 'batch' });
  const uploadedAt = performance.now();
  let batch = await client.batches.create({
    input_file_id: file.id,
    endpoint: '/v1/chat/completions',
    completion_window: '24h',
  });
  const seen = new Map<string, number>();
  while (!['completed', 'failed', 'expired', 'cancelled'].includes(batch.status)) {
    await new Promise((r) => setTimeout(r, 50));
    batch = await client.batches.retrieve(batch.id);
    if (!seen.has(batch.status)) seen.set(batch.status, performance.now());
  }
  const phase = (from: number, to: number | undefined) =>
    `${fmt(((to ?? from) - from) / 1000, 1)} s`;
  console.log(
    `  phases: upload ${phase(started, uploadedAt)}, validating ${phase(uploadedAt, seen.get('in_progress'))}, in_progress ${phase(seen.get('in_progress') ?? uploadedAt, seen.get('finalizing') ?? seen.get('completed'))}, finalizing ${phase(seen.get('finalizing') ?? 0, seen.get('completed'))}`,
  );
  const text = await (await client.files.content(batch.output_file_id!)).text();
  const seconds = (performance.now() - started) / 1000;
  const lines = text.split('\n').filter(Boolean).length;
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
  if (batch.status !== 'completed' || lines !== LINES)
    throw new Error(`batch ${batch.status}, ${lines} output lines`);
  return LINES / seconds;
}

export async function runOverheadBench(): Promise<void> {
  const sim = await spawnOpenbatch(
    ['simulate', '--port', '0'],
    {},
    /listening on (http:\/\/\S+)\/v1/,
  );
  try {
    const bare = await bareLoop(sim.url);
    const ours = await throughOpenbatch(sim.url);
    console.log(
      `overhead: ${fmt(LINES)} chat lines, concurrency ${CONCURRENCY}, simulator at zero latency`,
    );
    console.log(`  bare undici loop      ${fmt(bare)} req/s`);
    console.log(
      `  openbatch end to end  ${fmt(ours)} req/s (upload → completed → output downloaded)`,
    );
    console.log(`  ratio openbatch / bare = ${fmt(ours / bare, 2)}× (target ≥ 0.50×)`);
  } finally {
    await sim.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await runOverheadBench();
