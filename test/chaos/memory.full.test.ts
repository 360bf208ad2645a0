import { createReadStream, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import OpenAI from 'openai';
import { afterAll, describe, expect, it } from 'vitest';
import { createSimulator, type Simulator } from '../../src/simulator/simulator.ts';
import { idOfCall, isPaid } from './harness/checker.ts';
import {
  FAST_ENGINE_ENV,
  Servers,
  clientFor,
  removeDir,
  sleep,
  taggedLine,
  tempDir,
} from './harness/chaos-env.ts';
import { RssSampler, mib } from './harness/rss.ts';

/**
 * Memory bound (A8 #23, design.md §4.7), full run only: upload, validate, execute and download a
 * 1,000,000-line batch (limits raised by configuration, upstream latency 0, 64 in flight) while
 * sampling the server process's RSS per phase and its VmHWM. A 1,000-line batch runs first on the
 * same server as the reference: memory must not grow with the file. Budget: 256 MB.
 */

const LINES = Number(process.env.CHAOS_MEMORY_LINES ?? 1_000_000);
const BUDGET_BYTES = 256 * 1024 * 1024;

async function writeInput(path: string, prefix: string, lines: number): Promise<number> {
  const out = createWriteStream(path);
  let bytes = 0;
  for (let i = 0; i < lines; i++) {
    const text = JSON.stringify(taggedLine(`${prefix}-${i}`)) + '\n';
    bytes += text.length;
    if (!out.write(text)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return bytes;
}

/** Streams a file's content and counts lines per custom_id without keeping the lines. */
async function streamIds(
  baseURL: string,
  fileId: string | null | undefined,
  seen: Map<string, number>,
): Promise<number> {
  if (!fileId) return 0;
  const res = await fetch(`${baseURL}/files/${fileId}/content`, {
    headers: { authorization: 'Bearer k' },
  });
  if (!res.ok || !res.body) throw new Error(`download ${fileId}: HTTP ${res.status}`);
  const rl = createInterface({ input: Readable.fromWeb(res.body) });
  let n = 0;
  for await (const line of rl) {
    if (line === '') continue;
    n++;
    const id = (JSON.parse(line) as { custom_id: string }).custom_id;
    seen.set(id, (seen.get(id) ?? 0) + 1);
  }
  return n;
}

/**
 * One status poll, timed. A connection reset is retried (up to 5 times) and counted: it is how a
 * client sees the server's event loop blocked past its 5 s keep-alive timeout.
 */
async function pollOnce(
  client: OpenAI,
  batchId: string,
): Promise<{ batch: OpenAI.Batches.Batch; ms: number; resets: number }> {
  let resets = 0;
  for (;;) {
    const t0 = Date.now();
    try {
      const batch = await client.batches.retrieve(batchId);
      return { batch, ms: Date.now() - t0, resets };
    } catch (err) {
      if (!(err instanceof OpenAI.APIConnectionError) || resets >= 5) throw err;
      resets++;
    }
  }
}

async function runOne(
  client: OpenAI,
  baseURL: string,
  sampler: RssSampler,
  dir: string,
  prefix: string,
  lines: number,
): Promise<{ summary: string; lost: number; duplicated: number; status: string }> {
  const path = join(dir, `${prefix}.jsonl`);
  const bytes = await writeInput(path, prefix, lines);
  const t0 = Date.now();
  sampler.phase(`${prefix}:upload`);
  const file = await client.files.create({ file: createReadStream(path), purpose: 'batch' });
  const batch = await client.batches.create({
    input_file_id: file.id,
    endpoint: '/v1/chat/completions',
    completion_window: '24h',
  });
  let status = batch.status;
  let last: OpenAI.Batches.Batch = batch;
  const phaseTimes: string[] = [];
  let phaseStart = Date.now();
  sampler.phase(`${prefix}:${status}`);
  const deadline = Date.now() + 3_000_000;
  let slowestPollMs = 0;
  let resets = 0;
  while (!['completed', 'failed', 'expired', 'cancelled'].includes(status)) {
    if (Date.now() > deadline) throw new Error(`${prefix} still ${status}`);
    await sleep(500);
    const polled = await pollOnce(client, batch.id);
    slowestPollMs = Math.max(slowestPollMs, polled.ms);
    resets += polled.resets;
    last = polled.batch;
    if (last.status !== status) {
      phaseTimes.push(`${status} ${((Date.now() - phaseStart) / 1000).toFixed(1)} s`);
      phaseStart = Date.now();
      status = last.status;
      sampler.phase(`${prefix}:${status}`);
    }
  }
  sampler.phase(`${prefix}:download`);
  const seen = new Map<string, number>();
  const outLines = await streamIds(baseURL, last.output_file_id, seen);
  const errLines = await streamIds(baseURL, last.error_file_id, seen);
  sampler.phase(`after ${prefix}`);
  let lost = 0;
  for (let i = 0; i < lines; i++) if (!seen.has(`${prefix}-${i}`)) lost++;
  const duplicated = [...seen.values()].filter((n) => n > 1).length;
  const summary =
    `${prefix}: ${lines} lines (${mib(bytes)}) → ${status} in ${((Date.now() - t0) / 1000).toFixed(0)} s ` +
    `[${phaseTimes.join(', ')}], output ${outLines} + error ${errLines} lines, lost=${lost} duplicated=${duplicated} ` +
    `unexpected=${[...seen.keys()].filter((id) => !id.startsWith(`${prefix}-`)).length}; ` +
    `API while it ran: slowest status poll ${slowestPollMs} ms, connection resets ${resets}`;
  return { summary, lost, duplicated, status };
}

describe('memory bound: 1,000,000-line batch', () => {
  const servers = new Servers();
  let sim: Simulator | null = null;
  const dataDir = tempDir('memory');
  const inputDir = tempDir('memory-input');
  afterAll(async () => {
    await servers.killAll();
    await sim?.close();
    removeDir(dataDir);
    removeDir(inputDir);
  });

  it(`keeps the server under ${mib(BUDGET_BYTES)} through upload, validation, execution and download`, async () => {
    sim = createSimulator({ latencyMs: 0 });
    const simUrl = (await sim.listen(0)).url;
    const proc = await servers.spawn(dataDir, {
      ...FAST_ENGINE_ENV,
      OPENBATCH_UPSTREAM_URL: `${simUrl}/v1`,
      OPENBATCH_UPSTREAM_MAX_CONCURRENCY: '64',
      OPENBATCH_MAX_LINES: String(LINES),
      OPENBATCH_MAX_BATCH_FILE_BYTES: String(2 * 1024 * 1024 * 1024),
      OPENBATCH_MAX_FILE_BYTES: String(2 * 1024 * 1024 * 1024),
      OPENBATCH_TICK_MS: '500',
      // Diagnosis aid: e.g. CHAOS_SERVER_NODE_OPTIONS=--max-old-space-size=96 tells a lazily
      // collected heap from memory that is really held.
      ...(process.env.CHAOS_SERVER_NODE_OPTIONS
        ? { NODE_OPTIONS: process.env.CHAOS_SERVER_NODE_OPTIONS }
        : {}),
    });
    const sampler = new RssSampler(proc.child.pid ?? 0, 200);
    const client = clientFor(proc.baseURL, 'k', 600_000);
    await sleep(1_000);
    sampler.phase('idle at start');
    const diagnose = (err: unknown): Error =>
      new Error(
        `${(err as Error).message}; server exit=${String(proc.child.exitCode ?? proc.child.signalCode)}; ` +
          `${sampler.summary()}\nserver output (tail):\n${proc.output().slice(-3000)}`,
      );
    const small = await runOne(client, proc.baseURL, sampler, inputDir, 'small', 1_000).catch(
      (err: unknown) => {
        throw diagnose(err);
      },
    );
    const smallPeak = Math.max(...sampler.peaks.values(), sampler.hwm);
    const big = await runOne(client, proc.baseURL, sampler, inputDir, 'big', LINES).catch(
      (err: unknown) => {
        throw diagnose(err);
      },
    );
    sampler.stop();
    const calls = sim.calls();
    const paid = new Map<string, number>();
    for (const c of calls)
      if (isPaid(c)) paid.set(idOfCall(c) ?? '', (paid.get(idOfCall(c) ?? '') ?? 0) + 1);
    const dupPaid = [...paid.values()].filter((n) => n > 1).length;
    const report =
      `[memory] ${small.summary}\n[memory] ${big.summary}, duplicate paid calls=${dupPaid}\n` +
      `[memory] peak after the 1,000-line batch ${mib(smallPeak)}; overall ${sampler.summary()}; budget ${mib(BUDGET_BYTES)}`;
    console.log(report);
    expect(small.status, report).toBe('completed');
    expect(big.status, report).toBe('completed');
    expect(big.lost, report).toBe(0);
    expect(big.duplicated, report).toBe(0);
    expect(sampler.peak, report).toBeLessThanOrEqual(BUDGET_BYTES);
  }, 3_600_000);
});
