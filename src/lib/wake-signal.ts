/**
 * A level-triggered wake-up for background loops: `wake()` resolves the current (or next) wait
 * at once, so a notification sent while the loop was busy is never lost.
 */
export class WakeSignal {
  #pending = false;
  #resolve: (() => void) | null = null;

  wake(): void {
    this.#pending = true;
    const resolve = this.#resolve;
    this.#resolve = null;
    resolve?.();
  }

  /** Waits until woken, `timeoutMs` passes, or the signal aborts (then resolves too). */
  wait(timeoutMs: number, signal: AbortSignal): Promise<void> {
    if (this.#pending || signal.aborted) {
      this.#pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.#resolve = null;
        this.#pending = false;
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      signal.addEventListener('abort', done, { once: true });
      this.#resolve = done;
    });
  }
}
