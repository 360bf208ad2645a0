import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerProcess } from '../helpers/server-process.ts';
import {
  FAST_ENGINE_ENV,
  Servers,
  clientFor,
  jsonlOf,
  removeDir,
  submitBatch,
  taggedLine,
  tempDir,
  waitTerminal,
} from './harness/chaos-env.ts';
import { memoryOf, mib } from './harness/rss.ts';

const ONE_MIB = 1024 * 1024;
const BIN = join(import.meta.dirname, '..', '..', 'bin', 'openbatch.js');

/**
 * Requests built to stall or bloat a running server (issue 14), against a spawned server with a
 * token limit (so every prompt is counted): a 1 MiB line of one character in a batch and in real
 * time while /health must answer within 100 ms, then 10 MB model names that must leave its
 * resident memory and /admin answer bounded. Runs alone (CI chaos), so the timing is its own.
 */
describe('hostile requests', () => {
  const servers = new Servers();
  const dataDir = tempDir('hostile');
  let sim: ChildProcess;
  let proc: ServerProcess;
  beforeAll(async () => {
    // The simulator runs in its own process too: parsing 1 MiB prompts must not stall the
    // process that measures /health.
    sim = spawn(process.execPath, [BIN, 'simulate', '--port', '0', '--latency-ms', '5'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      sim.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const found = /listening on (http:\/\/\S+)\/v1/.exec(out);
        if (found?.[1]) resolve(found[1]);
      });
      sim.once('exit', () => reject(new Error(`simulator exited: ${out}`)));
    });
    proc = await servers.spawn(dataDir, {
      ...FAST_ENGINE_ENV,
      OPENBATCH_UPSTREAM_URL: `${url}/v1`,
      OPENBATCH_UPSTREAM_TPM: '100000000',
      OPENBATCH_MAX_LINE_BYTES: String(2 * ONE_MIB),
    });
    // Loading an encoding takes a few hundred ms once per process: not what is measured here.
    await clientFor(proc.baseURL).chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'warm up' }],
    });
  });
  afterAll(async () => {
    await servers.killAll();
    sim.kill('SIGKILL');
    removeDir(dataDir);
  });

  /** Polls /health until `work` settles; the slowest answer in ms. */
  async function slowestHealth(work: Promise<unknown>): Promise<number> {
    const health = proc.baseURL.replace(/\/v1$/, '/health');
    let done = false;
    const finished = work.finally(() => (done = true));
    let slowest = 0;
    for (let i = 0; i < 3_000 && !done; i++) {
      const started = performance.now();
      await (await fetch(health)).text();
      slowest = Math.max(slowest, performance.now() - started);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await finished;
    return slowest;
  }

  /** The same batch flow with two small lines: what this machine's load alone costs /health. */
  let baselineMs = 0;

  async function runBatch(lines: object[]): Promise<{ slowest: number; status: string }> {
    const client = clientFor(proc.baseURL);
    const work = (async () => {
      const { batchId } = await submitBatch(client, jsonlOf(lines));
      return waitTerminal(client, batchId, 60_000);
    })();
    const slowest = await slowestHealth(work);
    return { slowest, status: (await work).status };
  }

  it('runs a batch with a 1 MiB one-character line while /health answers in < 100 ms', async () => {
    const baseline = await runBatch([taggedLine('s1'), taggedLine('s2')]);
    baselineMs = baseline.slowest;
    const big = taggedLine('big') as { body: { messages: { content: string }[] } };
    big.body.messages[0]!.content = 'a'.repeat(ONE_MIB);
    const { slowest, status } = await runBatch([big, taggedLine('small')]);
    console.log(
      `[hostile] 1 MiB batch line: slowest /health ${slowest.toFixed(1)} ms (two small lines: ${baselineMs.toFixed(1)} ms)`,
    );
    expect(status).toBe('completed');
    // 100 ms over what the machine's own load costs the same flow (the box is shared: a loaded
    // 2-core runner adds tens of ms to any answer). Before bounded estimates it never answered.
    expect(slowest).toBeLessThan(100 + baselineMs);
  }, 90_000);

  it('forwards a 1 MiB real-time prompt while /health answers in < 100 ms', async () => {
    const work = clientFor(proc.baseURL).chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'b'.repeat(ONE_MIB) }],
      max_tokens: 5,
    });
    const slowest = await slowestHealth(work);
    console.log(`[hostile] 1 MiB real-time prompt: slowest /health ${slowest.toFixed(1)} ms`);
    expect((await work).object).toBe('chat.completion');
    expect(slowest).toBeLessThan(100 + baselineMs);
  }, 90_000);

  it('keeps RSS and /admin bounded after 10 MB model names', async () => {
    const pid = proc.child.pid ?? 0;
    const send = async (i: number) => {
      const res = await fetch(`${proc.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model: `${i}${'m'.repeat(10 * ONE_MIB)}`,
          messages: [{ role: 'user', content: 'hi' }],
        }),
      });
      expect(res.status).toBe(400);
      await res.text();
    };
    // The first ones grow the heap to hold one such request in flight; later ones reuse it.
    await send(0);
    await send(1);
    const before = memoryOf(pid)!.rss;
    // Each name leaves ~30 MB of garbage (body buffer, text, parsed name) that V8 frees at its
    // next major collection, whenever that comes: one RSS reading can land on a peak (+130 MiB
    // seen after 16 names, +2 MiB after 32). Retention never comes back down, so the check is the
    // lowest RSS over the last 16 of 48 names: that window spans several collections, and names
    // kept for good (as limiter keys once did) would hold it ≥ 32 × 10 MB above the start.
    const samples: number[] = [];
    for (let i = 2; i < 50; i++) {
      await send(i);
      samples.push(memoryOf(pid)!.rss);
    }
    const admin = await (await fetch(proc.baseURL.replace(/\/v1$/, '/admin/scheduler'))).text();
    const after = Math.min(...samples.slice(-16));
    console.log(
      `[hostile] 48 more 10 MB model names: RSS ${mib(before)} → lowest of the last 16 ${mib(after)} (highest seen ${mib(Math.max(...samples))}), /admin ${admin.length} bytes`,
    );
    expect(admin.length).toBeLessThan(64 * 1024);
    expect(after - before).toBeLessThan(100 * ONE_MIB);
  }, 120_000);
});
