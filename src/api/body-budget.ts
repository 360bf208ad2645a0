import { AppError } from '../domain/app-error.ts';

const busy = (message: string): AppError =>
  new AppError('rate_limited', message, { wireCode: 'server_busy' });

/**
 * Server-wide bound on JSON request bodies held in memory at once: their count and the bytes
 * they have delivered so far (a slow sender holds little). Past either, a request is answered
 * 429 at once rather than buffered, so a few huge concurrent bodies cannot exhaust memory.
 */
export class BodyBudget {
  readonly #maxBodies: number;
  readonly #maxBytes: number;
  #bodies = 0;
  #bytes = 0;

  constructor(maxBodies: number, maxBytes: number) {
    this.#maxBodies = maxBodies;
    this.#maxBytes = maxBytes;
  }

  /** A body starts; returns its accounting (add bytes as they arrive, release at the end). */
  open(): { add: (bytes: number) => void; release: () => void } {
    if (this.#bodies >= this.#maxBodies)
      throw busy(
        `The server is reading ${this.#bodies} request bodies, the most at once (OPENBATCH_MAX_CONCURRENT_BODIES). Retry shortly.`,
      );
    this.#bodies++;
    let held = 0;
    let open = true;
    return {
      add: (bytes) => {
        if (this.#bytes + bytes > this.#maxBytes)
          throw busy(
            `The server holds ${this.#bytes} bytes of request bodies, the most at once (OPENBATCH_MAX_BODY_BUFFER_BYTES). Retry shortly.`,
          );
        this.#bytes += bytes;
        held += bytes;
      },
      release: () => {
        if (!open) return;
        open = false;
        this.#bodies--;
        this.#bytes -= held;
      },
    };
  }
}
