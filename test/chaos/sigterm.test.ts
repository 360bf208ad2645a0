import { afterAll, describe, expect, it } from 'vitest';
import { createSimulator, type Simulator } from '../../src/simulator/simulator.ts';
import { recordedLines, undoneLineCounts } from '../helpers/store-peek.ts';
import { check, formatReport, idOfCall } from './harness/checker.ts';
import {
  FAST_ENGINE_ENV,
  Servers,
  clientFor,
  jsonlOf,
  removeDir,
  resultsOf,
  submitBatch,
  taggedLine,
  tempDir,
  waitTerminal,
  waitUntil,
} from './harness/chaos-env.ts';
import { createRandom } from './harness/prng.ts';

/**
 * Graceful SIGTERM (A8 #4): no new claims after the signal, in-flight calls finish or are
 * released within the shutdown grace, exit 0, and a restart resumes with no duplicates.
 * The only timing assertions of the suite live here, with margins: a call the server started
 * just before the signal may reach the upstream a little after it.
 */

const AFTER_SIGNAL_MARGIN_MS = 250;
const EXIT_MARGIN_MS = 5_000;

/**
 * The batch's lines as the store holds them: unfinished lines by the state of their chunk, and
 * the lines recorded in the committed spools (or the published files).
 */
function counts(dataDir: string, batchId: string): Record<string, number> {
  const { output, error } = recordedLines(dataDir, batchId);
  return { ...undoneLineCounts(dataDir, batchId), recorded: output.length + error.length };
}

interface SigtermRun {
  sim: Simulator;
  signalAtMs: number;
  exitCode: number | string;
  exitMs: number;
  callsAfterSignal: number;
  inFlightAtSignal: number;
  leasedAfterExit: number;
  why: string;
}

describe('SIGTERM', () => {
  const servers = new Servers();
  const sims: Simulator[] = [];
  const dirs: string[] = [];
  afterAll(async () => {
    await servers.killAll();
    for (const s of sims) await s.close();
    for (const d of dirs) removeDir(d);
  });

  /**
   * Runs a batch, sends SIGTERM once `signalWhen` holds, then restarts and finishes the batch.
   * `during` runs right before the signal (e.g. opens a slow client request).
   */
  async function run(opts: {
    name: string;
    lines: number;
    latencyMs: number;
    latencyJitterMs: number;
    graceMs: number;
    during?: (baseURL: string, sim: Simulator) => Promise<void>;
  }): Promise<SigtermRun & { report: ReturnType<typeof check> }> {
    const rng = createRandom(opts.name);
    const sim = createSimulator({
      latencyMs: opts.latencyMs,
      latencyJitterMs: opts.latencyJitterMs,
      seed: (rng.seed % 100_000) + 1,
    });
    sims.push(sim);
    const simUrl = (await sim.listen(0)).url;
    const dataDir = tempDir(opts.name);
    dirs.push(dataDir);
    const env = {
      ...FAST_ENGINE_ENV,
      OPENBATCH_UPSTREAM_URL: `${simUrl}/v1`,
      OPENBATCH_UPSTREAM_MAX_CONCURRENCY: '64',
      OPENBATCH_SHUTDOWN_GRACE_MS: String(opts.graceMs),
    };
    const ids = Array.from({ length: opts.lines }, (_, i) => `line-${i}`);
    const first = await servers.spawn(dataDir, env);
    const { batchId } = await submitBatch(
      clientFor(first.baseURL),
      jsonlOf(ids.map((id) => taggedLine(id))),
    );
    // Signal at a seeded moment once the engine is busy: 64 calls in flight.
    const threshold = rng.int(64, Math.floor(opts.lines / 3));
    await waitUntil(() => sim.calls().length >= threshold, 60_000, 'the batch to be under way');
    await opts.during?.(first.baseURL, sim);
    const signalAtMs = Date.now();
    first.child.kill('SIGTERM');
    const exitCode = await first.exited;
    const exitMs = Date.now() - signalAtMs;
    await new Promise((resolve) => setTimeout(resolve, 50));
    const calls = sim.calls();
    const callsAfterSignal = calls.filter(
      (c) => c.atMs > signalAtMs + AFTER_SIGNAL_MARGIN_MS,
    ).length;
    // Calls whose answer was not due yet at the signal, the ones within the margin included.
    const inFlightAtSignal = calls.filter(
      (c) =>
        c.atMs <= signalAtMs + AFTER_SIGNAL_MARGIN_MS &&
        c.atMs > signalAtMs - (opts.latencyMs + opts.latencyJitterMs + 50),
    ).length;
    const withinMargin = calls
      .filter((c) => c.atMs > signalAtMs && c.atMs <= signalAtMs + AFTER_SIGNAL_MARGIN_MS)
      .map((c) => c.atMs - signalAtMs);
    const afterExit = counts(dataDir, batchId);
    const second = await servers.spawn(dataDir, env);
    const client = clientFor(second.baseURL);
    const batch = await waitTerminal(client, batchId, 120_000);
    const { output, errors } = await resultsOf(client, batch);
    second.child.kill('SIGTERM');
    await second.exited;
    const report = check({
      inputIds: ids,
      calls: sim.calls(),
      outputLines: output,
      errorLines: errors,
      counts: batch.request_counts ?? null,
    });
    const firstCallAfter = calls.find((c) => c.atMs > signalAtMs + AFTER_SIGNAL_MARGIN_MS);
    const why =
      `${formatReport(report, rng.tag)}\n${rng.tag} exit=${String(exitCode)} after ${exitMs} ms ` +
      `(grace ${opts.graceMs}) callsAfterSignal(+${AFTER_SIGNAL_MARGIN_MS}ms)=${callsAfterSignal}` +
      (firstCallAfter
        ? ` (first ${firstCallAfter.atMs - signalAtMs} ms after, ${String(idOfCall(firstCallAfter))})`
        : '') +
      ` callsWithinMargin(ms after signal)=[${withinMargin.join(',')}]` +
      ` inFlightAtSignal≈${inFlightAtSignal} linesAfterExit=${JSON.stringify(afterExit)} status=${batch.status}`;
    console.log(why);
    return {
      sim,
      signalAtMs,
      exitCode,
      exitMs,
      callsAfterSignal,
      inFlightAtSignal,
      leasedAfterExit: afterExit.leased ?? 0,
      why,
      report,
    };
  }

  it('lets in-flight calls finish within the grace, exits 0, resumes with nothing paid twice', async () => {
    const r = await run({
      name: 'sigterm-drain',
      lines: 600,
      latencyMs: 600,
      latencyJitterMs: 400,
      graceMs: 5_000,
    });
    expect(r.exitCode, r.why).toBe(0);
    expect(r.callsAfterSignal, r.why).toBe(0);
    expect(r.leasedAfterExit, r.why).toBe(0);
    expect(r.exitMs, r.why).toBeLessThan(5_000 + EXIT_MARGIN_MS);
    expect(r.report.ok, r.why).toBe(true);
    expect(r.report.duplicatePaidCalls, r.why).toBe(0);
  }, 120_000);

  it('releases calls still running when the grace runs out; duplicates stay within what was in flight', async () => {
    const r = await run({
      name: 'sigterm-short-grace',
      lines: 200,
      latencyMs: 2_000,
      latencyJitterMs: 0,
      graceMs: 300,
    });
    expect(r.exitCode, r.why).toBe(0);
    expect(r.callsAfterSignal, r.why).toBe(0);
    expect(r.leasedAfterExit, r.why).toBe(0);
    expect(r.exitMs, r.why).toBeLessThan(300 + EXIT_MARGIN_MS);
    expect(r.report.ok, r.why).toBe(true);
    // Every call aborted at the end of the grace is sent again: at most the 64 in flight.
    expect(r.report.duplicatePaidCalls, r.why).toBeLessThanOrEqual(64);
  }, 120_000);

  it('stops claiming at the signal even while a client request is still open', async () => {
    // A real-time passthrough call that takes 9 s upstream keeps one HTTP request open; the
    // HTTP server's close() waits for it, and the engine must not keep working meanwhile.
    let slow: Promise<unknown> = Promise.resolve();
    const r = await run({
      name: 'sigterm-open-request',
      lines: 800,
      latencyMs: 110,
      latencyJitterMs: 90,
      graceMs: 2_000,
      during: async (baseURL, upstream) => {
        slow = fetch(`${baseURL}/chat/completions`, {
          method: 'POST',
          headers: { authorization: 'Bearer k', 'content-type': 'application/json' },
          body: JSON.stringify({
            model: 'gpt-4o-mini',
            messages: [{ role: 'user', content: 'slow [sim:latency=9000;id=passthrough]' }],
          }),
        })
          .then((res) => res.text())
          .catch((err: unknown) => err);
        // Signal only once the request is really open: the upstream has it.
        await waitUntil(
          () => upstream.calls().some((c) => c.marker?.includes('id=passthrough') === true),
          10_000,
          'the passthrough request to reach the upstream',
          5,
        );
      },
    });
    await slow;
    expect(r.exitCode, r.why).toBe(0);
    expect(r.callsAfterSignal, r.why).toBe(0);
    expect(r.exitMs, r.why).toBeLessThan(2_000 + EXIT_MARGIN_MS);
    expect(r.report.ok, r.why).toBe(true);
  }, 120_000);
});
