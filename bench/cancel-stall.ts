/**
 * No stall on cancel. A large batch is in progress against a slow upstream, so nearly all of it is
 * still queued; the batch is cancelled while GET /health is probed every ~10 ms from this process.
 * Prints the slowest /health answer around the cancel, and — from the simulator's call log — how
 * many lines the upstream received after the cancel was answered that it had not received before
 * (a line queued at the cancel must never be sent; a retry of one in flight is counted apart).
 */
import { join } from 'node:path';
import {
  createApiClient,
  createHealthProbe,
  type ApiClient,
  type HealthProbe,
} from './api-client.ts';
import { envInt, fmt, startServer, startSimulator, withTempDir } from './bench-helpers.ts';
import { chatLine, writeJsonl } from './input-files.ts';
import { uploadLimitsFor, waitForTerminal } from './measured-batch.ts';
import { figure, heading, note } from './report.ts';
import { markerId, readCallLog } from './sim-log.ts';

const LINES = envInt('BENCH_CANCEL_LINES', 1_000_000);
const UPSTREAM_LATENCY_MS = 200;
const CONCURRENCY = 16;
const HEALTH_EVERY_MS = 10;
// Probing starts this long before the cancel, so the figures show the server's normal answer too.
const PROBE_LEAD_MS = 1_000;
// After `cancelled`, keep watching this long for late sends before the call log is read.
const WATCH_AFTER_MS = envInt('BENCH_CANCEL_WATCH_MS', 3_000);
const HEALTH_TARGET_MS = 100;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface CancelTimings {
  cancelSentMs: number;
  cancelAnsweredMs: number;
  cancelledMs: number;
  /** Slowest /health answer before the cancel was sent, and from then until the watch ended. */
  slowestBeforeMs: number;
  slowestAfterMs: number;
  probes: number;
  /** Probes whose kept-alive connection the server dropped instead of answering. */
  droppedProbes: number;
  status: string;
}

export async function runCancelStallBench(): Promise<void> {
  await withTempDir('cancel', async (dir) => {
    const log = join(dir, 'calls.jsonl');
    const input = join(dir, 'input.jsonl');
    // The marker names each line in the simulator's log, so sends can be matched to lines.
    const inputBytes = await writeJsonl(input, LINES, (i) => chatLine(i, `[sim:id=c-${i}] `));
    const sim = await startSimulator(['--latency-ms', String(UPSTREAM_LATENCY_MS), '--log', log]);
    const server = await startServer(join(dir, 'data'), sim.url, {
      ...uploadLimitsFor(inputBytes, LINES),
      OPENBATCH_UPSTREAM_MAX_CONCURRENCY: String(CONCURRENCY),
    });
    let timings: CancelTimings;
    try {
      const api = createApiClient(server.url);
      const batch = await api.createBatch(await api.uploadFile(input));
      await waitUntilSending(api, batch.id);
      timings = await cancelWhileProbing(api, server.url, batch.id);
    } finally {
      await server.stop();
      await sim.stop(); // flushes the call log
    }
    printCancelFigures(timings, log);
  });
}

/** Waits until the batch is in progress with some lines done, i.e. sending steadily. */
async function waitUntilSending(api: ApiClient, id: string): Promise<void> {
  for (;;) {
    const batch = await api.retrieveBatch(id);
    if (batch.status === 'in_progress' && (batch.request_counts?.completed ?? 0) >= 4 * CONCURRENCY)
      return;
    if (!['validating', 'in_progress'].includes(batch.status))
      throw new Error(`batch ${id} is ${batch.status} before the cancel`);
    await sleep(200);
  }
}

interface HealthSample extends HealthProbe {
  atMs: number;
}

/** Probes /health one request at a time, about every HEALTH_EVERY_MS, until stopped. */
function startHealthProbing(url: string): { stop(): Promise<HealthSample[]> } {
  const probe = createHealthProbe(url);
  const samples: HealthSample[] = [];
  let probing = true;
  const loop = (async () => {
    while (probing) {
      const atMs = Date.now();
      const result = await probe.probe();
      samples.push({ atMs, ...result });
      await sleep(Math.max(0, HEALTH_EVERY_MS - result.ms));
    }
  })();
  // Marked handled now so an unexpected failure cannot kill this process (and orphan the server
  // and simulator) before stop() awaits the loop and rethrows it.
  loop.catch(() => undefined);
  return {
    stop: async () => {
      probing = false;
      await loop;
      await probe.close();
      return samples;
    },
  };
}

async function cancelWhileProbing(api: ApiClient, url: string, id: string): Promise<CancelTimings> {
  const probing = startHealthProbing(url);
  await sleep(PROBE_LEAD_MS);
  const cancelSentMs = Date.now();
  const answer = await api.cancelBatch(id);
  const cancelAnsweredMs = Date.now();
  const { batch } = await waitForTerminal(api, answer);
  const cancelledMs = Date.now();
  await sleep(WATCH_AFTER_MS);
  const samples = await probing.stop();
  const slowest = (list: HealthSample[]) => list.reduce((max, s) => Math.max(max, s.ms), 0);
  return {
    cancelSentMs,
    cancelAnsweredMs,
    cancelledMs,
    slowestBeforeMs: slowest(samples.filter((s) => s.atMs < cancelSentMs)),
    slowestAfterMs: slowest(samples.filter((s) => s.atMs >= cancelSentMs)),
    probes: samples.length,
    droppedProbes: samples.filter((s) => s.dropped).length,
    status: batch.status,
  };
}

function printCancelFigures(t: CancelTimings, log: string): void {
  heading(
    `cancel stall: ${fmt(LINES)} chat lines, upstream latency ${UPSTREAM_LATENCY_MS} ms, concurrency ${CONCURRENCY}, /health every ${HEALTH_EVERY_MS} ms`,
  );
  note('status after cancel', t.status);
  figure('slowest /health before the cancel', t.slowestBeforeMs, { unit: ' ms', digits: 1 });
  figure('slowest /health from the cancel on', t.slowestAfterMs, {
    unit: ' ms',
    digits: 1,
    below: HEALTH_TARGET_MS,
  });
  figure('/health probes', t.probes);
  figure('/health probes whose connection was dropped', t.droppedProbes, { exactly: 0 });
  figure('cancel request answered in', t.cancelAnsweredMs - t.cancelSentMs, { unit: ' ms' });
  figure('cancel answered → cancelled', (t.cancelledMs - t.cancelAnsweredMs) / 1000, {
    unit: ' s',
    digits: 2,
  });
  printSendFigures(t, log);
}

/**
 * A line the upstream first received after the cancel was answered was still queued (or claimed
 * but unsent) when the cancel took effect; its lateness tells a claim race (a few ms) from a
 * dispatcher that never noticed the cancel (seconds).
 */
function printSendFigures(t: CancelTimings, log: string): void {
  const calls = readCallLog(log).map((c) => ({ atMs: c.atMs, line: markerId(c.marker) }));
  const sentBefore = new Set(calls.filter((c) => c.atMs <= t.cancelAnsweredMs).map((c) => c.line));
  const sentAfter = calls.filter((c) => c.atMs > t.cancelAnsweredMs);
  const queuedSent = sentAfter.filter((c) => !sentBefore.has(c.line));
  figure('lines sent before the cancel answered', sentBefore.size);
  figure('sends after the cancel answered (retries of in-flight lines included)', sentAfter.length);
  const queuedLines = new Set(queuedSent.map((c) => c.line)).size;
  figure('queued lines sent after the cancel answered', queuedLines, { exactly: 0 });
  const lastMs = queuedSent.reduce((last, c) => Math.max(last, c.atMs - t.cancelAnsweredMs), -1);
  if (lastMs >= 0)
    figure('last of them sent after the cancel answered by', lastMs, { unit: ' ms' });
}

if (import.meta.url === `file://${process.argv[1]}`) await runCancelStallBench();
