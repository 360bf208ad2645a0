import { coerceError } from '../lib/coerce-error.ts';
import { WakeSignal } from '../lib/wake-signal.ts';
import { Dispatcher, type DispatcherStats } from './dispatcher.ts';
import type { EngineDeps } from './engine-deps.ts';
import { ResultRecorder } from './result-recorder.ts';
import { validateRetryPolicy } from './retry-policy.ts';
import { Supervisor } from './supervisor.ts';

/** What the HTTP layer may ask of the engine. */
export interface EngineFacade {
  /** A batch was created or cancelled: look at it now rather than at the next tick. */
  notify(): void;
}

/** The durable job engine: one supervisor loop, one dispatcher per upstream, one recorder. */
export interface Engine extends EngineFacade {
  start(): Promise<void>;
  /** Stops claiming, lets in-flight calls finish within the shutdown grace, flushes results. */
  stop(): Promise<void>;
  stats(): Record<string, DispatcherStats & { inFlight: number }>;
}

export function createEngine(deps: EngineDeps): Engine {
  validateRetryPolicy(deps.options.retry);
  const controller = new AbortController();
  const supervisorWake = new WakeSignal();
  const recorder = new ResultRecorder(deps, () => undefined);
  const dispatchers = deps.upstreams.all().map((u) => new Dispatcher(deps, u, recorder));
  const supervisor = new Supervisor(deps, dispatchers);
  const loops: Promise<void>[] = [];

  const supervise = async (): Promise<void> => {
    while (!controller.signal.aborted) {
      try {
        await supervisor.tick();
      } catch (err) {
        deps.logger.error({ err: coerceError(err).message }, 'supervisor tick failed');
      }
      for (const d of dispatchers) d.wake();
      await supervisorWake.wait(deps.options.tickMs, controller.signal);
    }
  };

  return {
    start: async () => {
      // One process owns an embedded store: leases left by a previous (crashed) process are void.
      const released = await deps.store.releaseLeases(deps.clock.nowMs(), {
        all: true,
        poisonAfter: deps.options.poisonAfter,
      });
      if (released > 0)
        deps.logger.warn({ released }, 'requeued items left in flight by the previous run');
      loops.push(supervise(), ...dispatchers.map((d) => d.run(controller.signal)));
    },
    stop: async () => {
      controller.abort();
      await Promise.all(dispatchers.map((d) => d.drain(deps.options.shutdownGraceMs)));
      await Promise.allSettled(loops);
      await recorder.flush();
      await supervisor.settle();
    },
    notify: () => {
      supervisorWake.wake();
    },
    stats: () =>
      Object.fromEntries(
        dispatchers.map((d, i) => [
          deps.upstreams.all()[i]?.name ?? String(i),
          { ...d.stats, inFlight: d.inFlightCount },
        ]),
      ),
  };
}
