/** Bit sets over line indexes, stored as bytes (a chunk's `done` and `sent` maps). */

export function newBitmap(bits: number): Uint8Array {
  return new Uint8Array(Math.ceil(bits / 8));
}

export function hasBit(map: Uint8Array, index: number): boolean {
  return ((map[index >> 3] ?? 0) & (1 << (index & 7))) !== 0;
}

export function setBit(map: Uint8Array, index: number): void {
  map[index >> 3] = (map[index >> 3] ?? 0) | (1 << (index & 7));
}

/** How many of the first `bits` bits are set. */
export function countBits(map: Uint8Array, bits: number): number {
  let n = 0;
  for (let i = 0; i < bits; i++) if (hasBit(map, i)) n++;
  return n;
}

/** A copy of `map` sized for `bits` (a stored map may be missing or shorter). */
export function bitmapOf(stored: Uint8Array | null | undefined, bits: number): Uint8Array {
  const map = newBitmap(bits);
  if (stored) map.set(stored.subarray(0, map.length));
  return map;
}
