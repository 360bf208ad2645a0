import {
  ENV_ENDPOINT_ID,
  type WebhookDeliveryRecord,
  type WebhookEventType,
  type WebhookSender,
} from '../domain/webhooks.ts';
import type { Clock } from '../lib/clock.ts';
import { coerceError } from '../lib/coerce-error.ts';
import type { Logger } from '../lib/logger.ts';
import { WakeSignal } from '../lib/wake-signal.ts';
import { webhookHeaders } from '../lib/webhook-signature.ts';
import type { Store } from '../store/store.ts';
import { attemptUpdate, type WebhookRetryPolicy } from './webhook-backoff.ts';

/** Webhook settings (durations in ms). */
export interface WebhookOptions extends WebhookRetryPolicy {
  /** OPENBATCH_WEBHOOK_URL / _SECRET: receives every project's events. */
  envEndpoint: { url: string; secret: string; events: readonly WebhookEventType[] } | null;
  /** One attempt may take this long (headers and body). @default 10_000 */
  timeoutMs: number;
  /** Between two looks at the outbox. */
  pollMs: number;
  /** Deliveries in flight at once; a slow receiver holds one slot, never the loop. @default 16 */
  maxInFlight: number;
}

export interface WebhookOutboxDeps {
  store: Store;
  clock: Clock;
  logger: Logger;
  sender: WebhookSender;
  options: WebhookOptions;
}

const FAN_OUT_PAGE = 500;

/**
 * Delivers the events the store's outbox holds (written in the same transaction as each batch's
 * terminal status): fans each out to its endpoints, POSTs it signed, records the outcome, retries
 * with backoff. Attempts run beside the loop, bounded in number, so a receiver that hangs costs
 * one slot until its timeout and never delays the engine or other receivers. At-least-once: an
 * attempt cut off by a crash or a stop is made again (same `webhook-id`) at the next start.
 */
export class WebhookOutbox {
  readonly #deps: WebhookOutboxDeps;
  readonly #controller = new AbortController();
  readonly #wake = new WakeSignal();
  readonly #inFlight = new Map<number, Promise<void>>();
  #loop: Promise<void> | null = null;

  constructor(deps: WebhookOutboxDeps) {
    this.#deps = deps;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  /** Stops looking, abandons attempts in flight (they stay pending), closes the sender. */
  async stop(): Promise<void> {
    this.#controller.abort();
    await this.#loop;
    await Promise.allSettled([...this.#inFlight.values()]);
    await this.#deps.sender.close();
  }

  async #run(): Promise<void> {
    const signal = this.#controller.signal;
    while (!signal.aborted) {
      try {
        await this.tick();
      } catch (err) {
        this.#deps.logger.error({ err: coerceError(err).message }, 'webhook outbox pass failed');
      }
      await this.#wake.wait(this.#deps.options.pollMs, signal);
    }
  }

  /** One pass: new events become deliveries; due deliveries start, up to `maxInFlight`. */
  async tick(): Promise<void> {
    const { store, clock, options } = this.#deps;
    const env = options.envEndpoint;
    const everyProject = env ? { id: ENV_ENDPOINT_ID, events: env.events } : null;
    await store.fanOutWebhookEvents(everyProject, clock.nowMs(), FAN_OUT_PAGE);
    const free = options.maxInFlight - this.#inFlight.size;
    if (free <= 0) return;
    const due = await store.dueWebhookDeliveries(clock.nowMs(), free, [...this.#inFlight.keys()]);
    for (const delivery of due) {
      const attempt = this.#attempt(delivery)
        .catch((err: unknown) =>
          this.#deps.logger.error(
            { deliveryId: delivery.delivery_id, err: coerceError(err).message },
            'webhook attempt failed to record',
          ),
        )
        .finally(() => {
          this.#inFlight.delete(delivery.delivery_id);
          this.#wake.wake(); // a slot is free
        });
      this.#inFlight.set(delivery.delivery_id, attempt);
    }
  }

  async #attempt(delivery: WebhookDeliveryRecord): Promise<void> {
    const { store, clock, logger, sender, options } = this.#deps;
    const target = await this.#target(delivery.endpoint_id);
    const nowMs = clock.nowMs();
    const result = target
      ? await sender.send(
          target.url,
          webhookHeaders(
            target.secret,
            delivery.event_id,
            Math.floor(nowMs / 1000),
            delivery.payload,
          ),
          delivery.payload,
          AbortSignal.any([this.#controller.signal, AbortSignal.timeout(options.timeoutMs)]),
        )
      : ({ kind: 'refused', reason: 'the endpoint is no longer configured' } as const);
    if (this.#controller.signal.aborted) return; // stopping: stays pending, sent again at start
    const update = attemptUpdate(delivery, result, clock.nowMs(), options);
    await store.recordWebhookAttempt(delivery.delivery_id, update);
    const fields = {
      deliveryId: delivery.delivery_id,
      eventId: delivery.event_id,
      endpointId: delivery.endpoint_id,
      type: delivery.type,
      attempts: update.attempts,
      status: update.last_status,
    };
    if (update.state === 'delivered') logger.info(fields, 'webhook delivered');
    else if (update.state === 'failed')
      logger.error({ ...fields, error: update.last_error }, 'webhook delivery failed for good');
    else logger.warn({ ...fields, error: update.last_error }, 'webhook attempt failed; will retry');
  }

  async #target(endpointId: string): Promise<{ url: string; secret: string } | null> {
    if (endpointId === ENV_ENDPOINT_ID) return this.#deps.options.envEndpoint;
    return this.#deps.store.getWebhookEndpoint(endpointId);
  }
}
