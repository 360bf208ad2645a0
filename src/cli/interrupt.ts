/**
 * Runs `fn` with a signal that aborts on the first SIGINT or SIGTERM, and removes the handlers
 * then or afterwards. Waiting commands stop cleanly (the batches keep running; a local run drains its
 * in-flight calls) instead of dying mid-write.
 */
export async function withInterrupt<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const detach = (): void => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  // Only the first signal is ours: a second Ctrl-C while draining gets Node's default (exit).
  const onSignal = (signal: NodeJS.Signals): void => {
    detach();
    controller.abort(new Interrupted(signal));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await fn(controller.signal);
  } finally {
    detach();
  }
}

/** The reason a command's signal aborted. */
export class Interrupted extends Error {
  override readonly name = 'Interrupted';
  readonly signal: string;

  constructor(signal: string) {
    super(`interrupted by ${signal}`);
    this.signal = signal;
  }
}

/** Exit status of a process stopped by Ctrl-C (128 + SIGINT). */
export const EXIT_INTERRUPTED = 130;
