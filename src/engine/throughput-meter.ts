const WINDOW_S = 10;

/** Finished lines per second per batch over the last ten seconds (for the admin endpoint). */
export class ThroughputMeter {
  readonly #perBatch = new Map<string, { slots: number[]; second: number }>();

  record(batchId: string, nowMs: number): void {
    const second = Math.floor(nowMs / 1000);
    let m = this.#perBatch.get(batchId);
    if (!m) {
      m = { slots: new Array<number>(WINDOW_S).fill(0), second };
      this.#perBatch.set(batchId, m);
    }
    this.#advance(m, second);
    m.slots[second % WINDOW_S]! += 1;
  }

  /** Lines per second over the window, or 0 when the batch finished nothing lately. */
  rate(batchId: string, nowMs: number): number {
    const m = this.#perBatch.get(batchId);
    if (!m) return 0;
    this.#advance(m, Math.floor(nowMs / 1000));
    return m.slots.reduce((a, b) => a + b, 0) / WINDOW_S;
  }

  forget(batchId: string): void {
    this.#perBatch.delete(batchId);
  }

  #advance(m: { slots: number[]; second: number }, second: number): void {
    for (let s = m.second + 1; s <= second && s - m.second <= WINDOW_S; s++)
      m.slots[s % WINDOW_S] = 0;
    if (second > m.second) m.second = second;
  }
}
