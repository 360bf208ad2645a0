/**
 * Seeded fault schedules. Every chaos scenario draws its random choices (kill moments, fault
 * mixes) from one of these, prints the seed when it starts and puts it in every assertion
 * message, so a failing schedule can be replayed exactly with `CHAOS_SEED=<seed>`.
 */

export interface ChaosRandom {
  readonly seed: number;
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [min, max]. */
  int(min: number, max: number): number;
  /** Uniform float in [min, max). */
  range(min: number, max: number): number;
  pick<T>(items: readonly T[]): T;
  /** `CHAOS_SEED=<seed>` plus the scenario name: what to paste to replay a failure. */
  readonly tag: string;
}

/** The seed to use: `CHAOS_SEED` when set (replay), otherwise a fresh one per run. */
export function chaosSeed(): number {
  const fromEnv = process.env.CHAOS_SEED;
  if (fromEnv !== undefined && fromEnv !== '') {
    const n = Number(fromEnv);
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff)
      throw new Error(`CHAOS_SEED must be an integer in [0, 2^32), got '${fromEnv}'`);
    return n;
  }
  return Math.floor(Math.random() * 0xffffffff) >>> 0;
}

/** mulberry32: tiny, fast, good enough to drive fault schedules; same seed, same sequence. */
export function createRandom(scenario: string, seed: number = chaosSeed()): ChaosRandom {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const tag = `[${scenario} CHAOS_SEED=${seed}]`;
  // Printed up front too: a run killed by a timeout still shows how to replay it.
  console.log(`chaos ${tag}`);
  return {
    seed,
    tag,
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    range: (min, max) => min + next() * (max - min),
    pick: <T>(items: readonly T[]): T => {
      if (items.length === 0) throw new Error('pick from an empty list');
      return items[Math.floor(next() * items.length)] as T;
    },
  };
}
