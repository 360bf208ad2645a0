const INITIAL_SLOTS = 1 << 12;

/**
 * Finds repeated custom_ids in one pass without keeping the ids: a 63-bit hash of each goes into
 * an open-addressing table of typed arrays (8 bytes a slot, at most half full: about 16 MB for
 * 1,000,000 lines). A repeated hash marks the id as a candidate; `candidates` then tells which
 * lines to compare exactly in a second pass, which only files with a repeat need.
 */
export class CustomIdIndex {
  #hi = new Uint32Array(INITIAL_SLOTS);
  #lo = new Uint32Array(INITIAL_SLOTS);
  #size = 0;
  readonly #repeats = new Set<string>();

  /** Adds an id; false when its hash was seen before (a candidate duplicate). */
  add(customId: string): boolean {
    const [hi, lo] = hash63(customId);
    if (this.#insert(hi, lo)) {
      if (++this.#size * 2 > this.#hi.length) this.#grow();
      return true;
    }
    this.#repeats.add(`${hi}:${lo}`);
    return false;
  }

  /** True when some hash repeated: a second pass must compare those ids exactly. */
  get hasCandidates(): boolean {
    return this.#repeats.size > 0;
  }

  /** True when `customId` hashes to a repeated value (worth an exact comparison). */
  isCandidate(customId: string): boolean {
    const [hi, lo] = hash63(customId);
    return this.#repeats.has(`${hi}:${lo}`);
  }

  /** Inserts unless present; true when inserted. */
  #insert(hi: number, lo: number): boolean {
    const mask = this.#hi.length - 1;
    for (let slot = lo & mask; ; slot = (slot + 1) & mask) {
      const h = this.#hi[slot] ?? 0;
      const l = this.#lo[slot] ?? 0;
      if (h === 0 && l === 0) {
        this.#hi[slot] = hi;
        this.#lo[slot] = lo;
        return true;
      }
      if (h === hi && l === lo) return false;
    }
  }

  #grow(): void {
    const oldHi = this.#hi;
    const oldLo = this.#lo;
    this.#hi = new Uint32Array(oldHi.length * 2);
    this.#lo = new Uint32Array(oldLo.length * 2);
    for (let i = 0; i < oldHi.length; i++) {
      const h = oldHi[i] ?? 0;
      const l = oldLo[i] ?? 0;
      if (h !== 0 || l !== 0) this.#insert(h, l);
    }
  }
}

/** Two independent 32-bit mixes of the UTF-16 code units; the low word is never 0. */
function hash63(text: string): [number, number] {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return [h1 >>> 0, (h2 | 1) >>> 0];
}
