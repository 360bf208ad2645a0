import type { WebhookEndpointRecord, WebhookEventType } from '../domain/webhooks.ts';
import type { Store } from './store.ts';

/** The webhook part of a store (both stores implement it the same way). */
export type WebhookOps = Pick<
  Store,
  | 'insertWebhookEndpoint'
  | 'listWebhookEndpoints'
  | 'getWebhookEndpoint'
  | 'deleteWebhookEndpoint'
  | 'fanOutWebhookEvents'
  | 'dueWebhookDeliveries'
  | 'recordWebhookAttempt'
  | 'listWebhookDeliveries'
>;

/** A batch already in one of these sends no event again. */
export const TERMINAL_FOR_EVENTS = new Set(['completed', 'failed', 'expired', 'cancelled']);

/** A `webhook_endpoints` row: `events` stored as JSON text. */
export interface EndpointRow extends Omit<WebhookEndpointRecord, 'events'> {
  events: string;
}

export const toEndpoint = (row: EndpointRow): WebhookEndpointRecord => ({
  ...row,
  events: JSON.parse(row.events) as WebhookEventType[],
});
