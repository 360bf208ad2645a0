import { randomBytes } from 'node:crypto';
import { createCallLog } from './call-log.ts';
import type { CallLog } from './call-log.ts';
import { createCapacityGate } from './capacity-gate.ts';
import type { CapacityGate } from './capacity-gate.ts';
import { mulberry32 } from './prng.ts';
import { PrefixCache } from './prefix-cache.ts';
import { createRateWindow } from './rate-window.ts';
import type { RateWindow } from './rate-window.ts';
import type { SimCapacity, SimClock, SimulatorOptions } from './types.ts';

/** Everything one simulator instance owns, resolved from its options once. */
export interface SimState {
  readonly clock: SimClock;
  /** Seeded PRNG shared by jitter and fault dice: sequential runs are reproducible. */
  readonly random: () => number;
  readonly latencyMs: number;
  readonly latencyJitterMs: number;
  readonly failRate: number;
  readonly failStatuses: readonly number[];
  readonly retryAfterMs: number;
  readonly rate: RateWindow | null;
  readonly capacity: SimCapacity | null;
  readonly gate: CapacityGate | null;
  readonly log: CallLog;
  /** Calls already failed per body hash, for `status=500x2` / `times=N` directives. */
  readonly faultCounts: Map<string, number>;
  readonly models: readonly string[];
  /** OpenAI-looking ids without a random draw per request: instance tag + counter. */
  readonly newId: (prefix: string) => string;
  /** The modelled prompt cache, when the options ask for one. */
  readonly prefixCache: PrefixCache | null;
}

export const DEFAULT_MODELS: readonly string[] = [
  'gpt-4o-mini',
  'gpt-4o',
  'text-embedding-3-small',
  'omni-moderation-latest',
  'sim-model',
];

const systemClock: SimClock = { nowMs: () => Date.now() };

export function createSimState(options: SimulatorOptions): SimState {
  const clock = options.clock ?? systemClock;
  const limited = options.rpm !== undefined || options.tpm !== undefined;
  const limits = {
    ...(options.rpm === undefined ? {} : { rpm: options.rpm }),
    ...(options.tpm === undefined ? {} : { tpm: options.tpm }),
  };
  const capacity = options.capacity ?? null;
  return {
    clock,
    random: mulberry32(options.seed ?? 1),
    latencyMs: Math.max(0, options.latencyMs ?? 0),
    latencyJitterMs: Math.max(0, options.latencyJitterMs ?? 0),
    failRate: Math.min(1, Math.max(0, options.failRate ?? 0)),
    failStatuses:
      options.failStatuses !== undefined && options.failStatuses.length > 0
        ? options.failStatuses
        : [500],
    retryAfterMs: Math.max(0, options.retryAfterMs ?? 200),
    rate: limited ? createRateWindow(limits, clock) : null,
    capacity,
    gate: capacity === null ? null : createCapacityGate(capacity.slots, capacity.queue),
    log: createCallLog(options.logFile),
    faultCounts: new Map(),
    models: options.models ?? DEFAULT_MODELS,
    newId: idFactory(),
    prefixCache: options.prefixCache ? new PrefixCache(options.prefixCache.entries) : null,
  };
}

function idFactory(): (prefix: string) => string {
  const tag = randomBytes(8).toString('hex');
  let counter = 0;
  return (prefix) => {
    counter += 1;
    return `${prefix}${tag}${counter.toString(16).padStart(16, '0')}`;
  };
}
