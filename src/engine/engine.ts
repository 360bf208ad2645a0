import type { BatchResultsPage, ResultsCursor } from '../protocol/batch-results.ts';
import { DEFAULT_SCHEDULING } from '../domain/scheduling-settings.ts';
import { randomUUID } from 'node:crypto';
import { coerceError } from '../lib/coerce-error.ts';
import { WakeSignal } from '../lib/wake-signal.ts';
import type { Upstream } from '../providers/provider.ts';
import { Dispatcher, type DispatcherStats } from './dispatcher.ts';
import type { EngineDeps } from './engine-deps.ts';
import {
  UpstreamScheduler,
  type SendResult,
  type UpstreamSchedulerSnapshot,
} from './limiter/upstream-scheduler.ts';
import { ClusterLimits } from './limiter/cluster-limits.ts';
import { LimiterChangeLog } from './limiter-change-log.ts';
import { ResultRecorder } from './result-recorder.ts';
import { readResultsPage } from './results-reader.ts';
import { validateRetryPolicy } from './retry-policy.ts';
import { SUSPECT_DELAY_MS, Supervisor } from './supervisor.ts';
import { ThroughputMeter } from './throughput-meter.ts';
import { createControls } from './create-controls.ts';
import type { CostTotal } from './cost-control.ts';
import { estimateFile, type FileEstimate } from './file-estimate.ts';
import type { BatchEndpoint } from '../protocol/endpoints.ts';
import { ExecutionChooser } from './native/execution-chooser.ts';
import { NativeRunner } from './native/native-runner.ts';
import type { NativeUpstream } from './native/native-options.ts';

export type { SendResult } from './limiter/upstream-scheduler.ts';
export type { CostTotal } from './cost-control.ts';
export type { FileEstimate } from './file-estimate.ts';

/** The scheduler's state for one upstream, plus the dispatcher's counters. */
export interface UpstreamStatus extends UpstreamSchedulerSnapshot, DispatcherStats {
  inFlight: number;
  claimed: number;
}

/** What the readiness probe asks of the engine. */
export interface EngineReadiness {
  running: boolean;
  /** End of the supervisor's last pass (expiry, leases, finalizing), or null before the first. */
  lastTickMs: number | null;
}

/** What the HTTP layer may ask of the engine. */
export interface EngineFacade {
  /** A batch was created or cancelled: look at it now rather than at the next tick. */
  notify(): void;
  /** A batch is now cancelling: its claimed, unsent lines never go out (not even until the next tick). */
  cancelled(batchId: string): void;
  /**
   * Waits until a real-time request to `upstream` may go (same limits as batch traffic, ahead of
   * it); returns the function to call with the answer.
   */
  admitRealtime(
    upstream: string,
    model: string,
    body: Record<string, unknown>,
    signal: AbortSignal,
  ): Promise<(result: SendResult) => void>;
  upstreamStatus(): UpstreamStatus[];
  /** Whether the engine was started and not stopped, and when its supervisor last finished a pass. */
  readiness(): EngineReadiness;
  /** Lines finished per second over the last ten seconds. */
  batchThroughput(batchId: string): number;
  /** Finished lines of a batch (running or ended) from `cursor` on: see results-reader.ts. */
  results(batchId: string, cursor: ResultsCursor, limit: number): Promise<BatchResultsPage>;
  /** Cost charged by this process per (upstream, model) since it started (issue 13). */
  costTotals(): CostTotal[];
  /** A batch file's requests, tokens, cost and ETA at the upstreams' limits (file-estimate.ts). */
  estimate(req: {
    fileId: string;
    endpoint: BatchEndpoint;
    completionWindow: string;
  }): Promise<FileEstimate>;
}

/** The durable job engine: one supervisor loop, one dispatcher per upstream, one recorder. */
export interface Engine extends EngineFacade {
  start(): Promise<void>;
  /** Stops claiming, lets in-flight calls finish within the shutdown grace, flushes results. */
  stop(): Promise<void>;
}

const STATUS_LOG_EVERY_MS = 10_000;

export function createEngine(baseDeps: EngineDeps): Engine {
  validateRetryPolicy(baseDeps.options.retry);
  const native: ReadonlyMap<string, NativeUpstream> = baseDeps.options.native ?? new Map();
  const deps: EngineDeps =
    native.size > 0
      ? { ...baseDeps, execution: new ExecutionChooser(native, baseDeps.clock, baseDeps.logger) }
      : baseDeps;
  const controller = new AbortController();
  const supervisorWake = new WakeSignal();
  const recorder = new ResultRecorder(deps);
  const meter = new ThroughputMeter();
  const controls = createControls(deps);
  const schedulerFor = (u: Upstream): UpstreamScheduler =>
    new UpstreamScheduler(u, deps.options.scheduling.get(u.name) ?? DEFAULT_SCHEDULING, deps.clock);
  const dispatchers = new Map(
    deps.upstreams
      .all()
      .map((u) => [u.name, new Dispatcher(deps, schedulerFor(u), recorder, meter, controls)]),
  );
  const supervisor = new Supervisor(deps, [...dispatchers.values()], recorder);
  // Processes on one shared store share each upstream's limits (see ClusterLimits).
  const exchange = deps.store.limiterExchange;
  const cluster = exchange
    ? new ClusterLimits(
        exchange,
        [...dispatchers.values()].map((d) => d.scheduler),
        { clock: deps.clock, logger: deps.logger, memberId: randomUUID() },
      )
    : null;
  const runners = [...native]
    .filter(([, u]) => u.settings.mode !== 'realtime')
    .map(([name, u]) => new NativeRunner(deps, name, u, recorder));
  const loops: Promise<void>[] = [];
  let lastStatusLogMs = 0;
  const limiterLog = new LimiterChangeLog(deps.logger);
  let started = false;
  let lastTickMs: number | null = null;

  const upstreamStatus = (): UpstreamStatus[] =>
    [...dispatchers.values()].map((d) => ({
      ...d.scheduler.snapshot(),
      ...d.stats,
      inFlight: d.inFlightCount,
      claimed: d.claimedCount,
    }));

  const logStatus = (): void => {
    const now = deps.clock.nowMs();
    if (now - lastStatusLogMs < STATUS_LOG_EVERY_MS) return;
    lastStatusLogMs = now;
    for (const status of upstreamStatus())
      if (status.inFlight > 0 || status.claimed > 0)
        deps.logger.info({ ...status }, 'upstream scheduler');
  };

  const supervise = async (): Promise<void> => {
    while (!controller.signal.aborted) {
      try {
        await supervisor.tick();
        lastTickMs = deps.clock.nowMs();
        limiterLog.observe([...dispatchers.values()].map((d) => d.scheduler.snapshot()));
        logStatus();
      } catch (err) {
        deps.logger.error({ err: coerceError(err).message }, 'supervisor tick failed');
      }
      for (const d of dispatchers.values()) d.wake();
      await supervisorWake.wait(deps.options.tickMs, controller.signal);
    }
  };

  let stopping: Promise<void> | null = null;
  const stopOnce = async (): Promise<void> => {
    controller.abort();
    // The loops first: a claim still awaiting the database when the signal came would otherwise
    // add chunks (and start calls) after drain released everything (leases orphaned until they
    // run out, outcomes pushed after the last flush).
    await Promise.allSettled(loops);
    await Promise.all([...dispatchers.values()].map((d) => d.drain(deps.options.shutdownGraceMs)));
    await recorder.flush();
    recorder.stop();
    await supervisor.settle();
    await deps.blobs.close();
  };

  // A batch the cost controls stopped (spend cap, canary) is cancelling: drop its unsent lines.
  controls.costs.onStop = (batchId) => {
    for (const d of dispatchers.values()) d.dropUnsent(batchId, 'cancelled');
    supervisorWake.wake();
  };

  return {
    start: async () => {
      // One process owns an embedded store: leases left by a previous (crashed) process are void.
      // A shared store's leases may be other live processes': only those that ran out go back.
      const sweep = await deps.store.releaseLeases(deps.clock.nowMs(), {
        all: !deps.store.shared,
        poisonAfter: deps.options.poisonAfter,
        suspectDelayMs: SUSPECT_DELAY_MS,
      });
      if (sweep.revoked.length > 0)
        deps.logger.warn(
          { chunks: sweep.revoked.length, poisoned: sweep.poisoned },
          'requeued lines left in flight by the previous run',
        );
      // In a cluster another process may be between writing a blob and registering its file:
      // orphans are only cleaned where this process is the only one.
      if (!deps.store.shared) {
        await supervisor.removeStaleSpools();
        const orphans = await supervisor.removeOrphanBlobs();
        if (orphans > 0)
          deps.logger.warn({ blobs: orphans }, 'removed file contents no file names');
      }
      // The first heartbeat before the first call: this process starts at its share.
      await cluster?.beat();
      started = true;
      loops.push(supervise(), ...[...dispatchers.values()].map((d) => d.run(controller.signal)));
      if (cluster) loops.push(cluster.run(controller.signal, new WakeSignal()));
      loops.push(...runners.map((r) => runNative(deps, r, controller.signal)));
    },
    // Idempotent: serve stops the engine at the signal, and runtime.close() stops it again.
    stop: () => (stopping ??= stopOnce()),
    notify: () => supervisorWake.wake(),
    cancelled: (batchId) => {
      for (const d of dispatchers.values()) d.dropUnsent(batchId, 'cancelled');
      supervisorWake.wake();
    },
    admitRealtime: async (upstream, model, body, signal) => {
      const dispatcher = dispatchers.get(upstream);
      if (!dispatcher) return () => undefined;
      return dispatcher.admitRealtime(model, body, signal);
    },
    upstreamStatus,
    readiness: () => ({ running: started && !controller.signal.aborted, lastTickMs }),
    batchThroughput: (batchId) => meter.rate(batchId, deps.clock.nowMs()),
    results: (batchId, cursor, limit) => readResultsPage(deps, batchId, cursor, limit),
    costTotals: () => controls.costs.totals(),
    estimate: (req) =>
      estimateFile(
        deps,
        controls.costs,
        [...dispatchers.values()].map((d) => d.scheduler.snapshot()),
        req,
      ),
  };
}

/** A native runner's loop: one pass per supervisor period (sub-batches poll on their own clocks). */
async function runNative(
  deps: EngineDeps,
  runner: NativeRunner,
  signal: AbortSignal,
): Promise<void> {
  const wait = new WakeSignal();
  while (!signal.aborted) {
    try {
      await runner.tick(signal);
    } catch (err) {
      if (!signal.aborted)
        deps.logger.error(
          { upstream: runner.name, err: coerceError(err).message },
          'native runner pass failed',
        );
    }
    await wait.wait(deps.options.tickMs, signal);
  }
}
