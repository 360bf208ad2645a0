/** A tiny seeded PRNG (mulberry32): deterministic, fast, good enough for jitter and fault dice. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A 32-bit seed taken from a hex digest, so equal request bodies give equal replies. */
export function seedFromHex(hex: string, offset = 0): number {
  return Number.parseInt(hex.slice(offset, offset + 8), 16) >>> 0;
}
