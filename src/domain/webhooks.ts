import type { BatchStatus } from '../protocol/batch.ts';

/** The batch events OpenAI sends, one per terminal status. */
export const WEBHOOK_EVENT_TYPES = [
  'batch.completed',
  'batch.failed',
  'batch.expired',
  'batch.cancelled',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** The event a batch reaching `status` sends, or null when the status is not terminal. */
export function eventTypeFor(status: BatchStatus): WebhookEventType | null {
  switch (status) {
    case 'completed':
    case 'failed':
    case 'expired':
    case 'cancelled':
      return `batch.${status}`;
    case 'validating':
    case 'in_progress':
    case 'finalizing':
    case 'cancelling':
      return null;
  }
}

/** A project's webhook endpoint (its secret signs every delivery). Times in epoch ms. */
export interface WebhookEndpointRecord {
  id: string;
  project: string;
  url: string;
  events: WebhookEventType[];
  secret: string;
  created_at_ms: number;
}

/** The endpoint given by OPENBATCH_WEBHOOK_URL / _SECRET: every project's events go there. */
export const ENV_ENDPOINT_ID = 'env';

export type WebhookDeliveryState = 'pending' | 'delivered' | 'failed';

/** One event for one endpoint: the same body (and `webhook-id`) on every attempt. */
export interface WebhookDeliveryRecord {
  delivery_id: number;
  event_id: string;
  endpoint_id: string;
  project: string;
  type: WebhookEventType;
  batch_id: string;
  payload: string;
  state: WebhookDeliveryState;
  attempts: number;
  next_attempt_ms: number;
  created_at_ms: number;
  last_status: number | null;
  last_error: string | null;
  finished_at_ms: number | null;
}

/** What an attempt changed on a delivery. */
export type WebhookAttemptUpdate = Pick<
  WebhookDeliveryRecord,
  'state' | 'attempts' | 'next_attempt_ms' | 'last_status' | 'last_error' | 'finished_at_ms'
>;

/** The event body, exactly as OpenAI sends it. */
export function eventPayload(
  id: string,
  type: WebhookEventType,
  createdAtMs: number,
  batchId: string,
): string {
  return JSON.stringify({
    id,
    object: 'event',
    type,
    created_at: Math.floor(createdAtMs / 1000),
    data: { id: batchId },
  });
}

/** How one delivery attempt went, as the sender reports it (it never throws). */
export type WebhookSendResult =
  | { kind: 'response'; status: number }
  /** The target is (or now resolves to) a private address: not retried. */
  | { kind: 'refused'; reason: string }
  /** Timeout, connection refused, reset…: retried. */
  | { kind: 'error'; message: string };

/** POSTs signed event bodies; the HTTP implementation lives in providers/webhook-http.ts. */
export interface WebhookSender {
  send(
    url: string,
    headers: Record<string, string>,
    body: string,
    signal: AbortSignal,
  ): Promise<WebhookSendResult>;
  close(): Promise<void>;
}
