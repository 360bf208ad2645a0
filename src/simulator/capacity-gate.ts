/**
 * Bounded concurrency with a bounded FIFO queue, like a vLLM/Ollama server: `slots` requests in
 * service, up to `queue` waiting, everything beyond refused at once (the caller answers 503).
 */
export interface CapacityGate {
  /**
   * Calls `onGrant` when a slot is free (synchronously if one is free now); false when the queue is
   * full and `onGrant` will never run. Every granted slot must be released exactly once.
   */
  acquire(onGrant: () => void): boolean;
  release(): void;
  /** Requests in service. */
  readonly active: number;
  /** Requests waiting for a slot. */
  readonly waiting: number;
  /** Grants every waiter (used on close so their handlers finish instead of dangling). */
  drain(): void;
}

export function createCapacityGate(slots: number, queue: number): CapacityGate {
  const maxActive = Math.max(1, Math.floor(slots));
  const maxWaiting = Math.max(0, Math.floor(queue));
  const waiters: Array<() => void> = [];
  let active = 0;
  return {
    acquire: (onGrant) => {
      if (active < maxActive) {
        active += 1;
        onGrant();
        return true;
      }
      if (waiters.length >= maxWaiting) return false;
      waiters.push(onGrant);
      return true;
    },
    release: () => {
      // Hand the slot straight to the next waiter, so `active` never dips and a newcomer can't jump the queue.
      const next = waiters.shift();
      if (next === undefined) active = Math.max(0, active - 1);
      else next();
    },
    get active() {
      return active;
    },
    get waiting() {
      return waiters.length;
    },
    drain: () => {
      for (const waiter of waiters.splice(0)) {
        active += 1;
        waiter();
      }
    },
  };
}
