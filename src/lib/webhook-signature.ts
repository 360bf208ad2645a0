import { createHmac } from 'node:crypto';

/**
 * Standard Webhooks headers for one delivery attempt: `webhook-signature` is `v1,` + base64
 * HMAC-SHA256 of "id.timestamp.body" keyed by the base64-decoded secret after `whsec_` (what the
 * official SDKs' `webhooks.unwrap()` verify). The id stays the same on every attempt.
 */
export function webhookHeaders(
  secret: string,
  id: string,
  timestampS: number,
  body: string,
): Record<string, string> {
  const key = Buffer.from(secret.startsWith('whsec_') ? secret.slice(6) : secret, 'base64');
  const mac = createHmac('sha256', key).update(`${id}.${timestampS}.${body}`).digest('base64');
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestampS),
    'webhook-signature': `v1,${mac}`,
  };
}
