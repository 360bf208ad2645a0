import type { BatchExecution } from '../../domain/batch-execution.ts';
import type { BatchRecord } from '../../domain/records.ts';
import type { Logger } from '../../lib/logger.ts';
import type { Clock } from '../../lib/clock.ts';
import { nativeQueue, type NativeUpstream } from './native-options.ts';

const PROBE_TIMEOUT_MS = 10_000;
/** A probe that could not reach the upstream is asked again after this (its answer is kept). */
const FAILED_PROBE_TTL_MS = 60_000;

interface Choice {
  native: boolean;
  reason: string;
}

/** How one batch's lines are queued, decided per upstream before its chunks are stored. */
export interface ExecutionRouting {
  /** The queue name for the batch's lines routed to `upstream`. */
  queueFor(upstream: string): string;
  /** The batch's `execution` field, from the upstreams its lines used (null when none). */
  execution(): BatchExecution | null;
}

/**
 * Decides per batch and upstream between real-time calls and the upstream's Batch API:
 * `realtime` and `native` as configured; `auto` native when the upstream has a Batch API (probed
 * once, the answer kept) and the batch's window is longer than the fallback margin.
 */
export class ExecutionChooser {
  readonly #upstreams: ReadonlyMap<string, NativeUpstream>;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #probes = new Map<string, Promise<{ available: boolean; detail: string }>>();

  constructor(upstreams: ReadonlyMap<string, NativeUpstream>, clock: Clock, logger: Logger) {
    this.#upstreams = upstreams;
    this.#clock = clock;
    this.#logger = logger;
  }

  async routingFor(batch: BatchRecord): Promise<ExecutionRouting> {
    const choices = new Map<string, Choice>();
    for (const [name, upstream] of this.#upstreams)
      choices.set(name, await this.#choose(name, upstream, batch));
    const used = new Map<string, Choice>();
    return {
      queueFor: (name) => {
        const choice = choices.get(name) ?? { native: false, reason: `upstream ${name}: realtime` };
        used.set(name, choice);
        return choice.native ? nativeQueue(name) : name;
      },
      execution: () => {
        if (used.size === 0) return null;
        const all = [...used.values()];
        const native = all.filter((c) => c.native).length;
        const mode = native === all.length ? 'native' : native === 0 ? 'realtime' : 'mixed';
        const execution: BatchExecution = {
          mode,
          reason: [...new Set(all.map((c) => c.reason))].join('; '),
        };
        this.#logger.info({ batchId: batch.id, execution }, 'batch execution chosen');
        return execution;
      },
    };
  }

  async #choose(name: string, upstream: NativeUpstream, batch: BatchRecord): Promise<Choice> {
    const { mode, fallbackMarginMs } = upstream.settings;
    if (mode === 'realtime')
      return { native: false, reason: `upstream ${name}: batchMode realtime` };
    if (mode === 'native')
      return {
        native: true,
        reason: `upstream ${name}: batchMode native (its Batch API, batch price)`,
      };
    const probe = await this.#probe(name, upstream);
    if (!probe.available)
      return {
        native: false,
        reason: `upstream ${name} has no Batch API (${probe.detail}): realtime`,
      };
    const windowMs = batch.expires_at_ms - this.#clock.nowMs();
    if (windowMs <= fallbackMarginMs)
      return {
        native: false,
        reason: `upstream ${name} has a Batch API, but the window (${Math.round(windowMs / 1000)} s) is within the fallback margin (${Math.round(fallbackMarginMs / 1000)} s): realtime`,
      };
    return { native: true, reason: `upstream ${name} has a Batch API (auto): batch price` };
  }

  /**
   * Probed once per upstream and the answer kept; a probe that could not reach it (network) is
   * kept for a minute only, so batches meanwhile do not each wait for a dead upstream.
   */
  #probe(name: string, upstream: NativeUpstream): Promise<{ available: boolean; detail: string }> {
    let probe = this.#probes.get(name);
    if (!probe) {
      probe = upstream.api.probe(AbortSignal.timeout(PROBE_TIMEOUT_MS)).then((result) => {
        this.#logger.info({ upstream: name, ...result }, 'upstream Batch API probed');
        if (!result.available && result.detail.includes('failed'))
          setTimeout(() => this.#probes.delete(name), FAILED_PROBE_TTL_MS).unref();
        return result;
      });
      this.#probes.set(name, probe);
    }
    return probe;
  }
}
