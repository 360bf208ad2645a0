import { lookup, type LookupAddress, type LookupAllOptions, type LookupOptions } from 'node:dns';
import { isIP } from 'node:net';
import { Agent, request } from 'undici';
import type { WebhookSender } from '../domain/webhooks.ts';
import { coerceError } from '../lib/coerce-error.ts';
import { isPrivateAddress } from '../lib/private-address.ts';

const REFUSED = 'EWEBHOOKPRIVATE';

/**
 * Webhook deliveries over undici: one POST, no redirect followed (a 3xx is a failed attempt),
 * a deadline on headers and body, and — unless `allowPrivate` — no connection to a private or
 * loopback address: the check runs in the connect-time DNS lookup, so a name that resolves to a
 * public address when the endpoint is created and a private one later is still refused.
 */
export function createWebhookSender(opts: {
  timeoutMs: number;
  allowPrivate: boolean;
}): WebhookSender {
  const agent = new Agent({
    headersTimeout: opts.timeoutMs,
    bodyTimeout: opts.timeoutMs,
    connections: 16,
    connect: opts.allowPrivate ? {} : { lookup: guardedLookup },
  });
  return {
    send: async (url, headers, body, signal) => {
      const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
      if (!opts.allowPrivate && isIP(host) && isPrivateAddress(host))
        return { kind: 'refused', reason: `${host} is a private or loopback address` };
      try {
        const res = await request(url, {
          method: 'POST',
          headers: {
            ...headers,
            'content-type': 'application/json',
            'user-agent': 'openbatch-webhooks',
          },
          body,
          dispatcher: agent,
          signal,
        });
        await res.body.dump();
        return { kind: 'response', status: res.statusCode };
      } catch (err) {
        const e = coerceError(err) as Error & { code?: string; cause?: { code?: string } };
        if (e.code === REFUSED || e.cause?.code === REFUSED)
          return { kind: 'refused', reason: e.message };
        return { kind: 'error', message: e.message };
      }
    },
    close: async () => agent.close(),
  };
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/** dns.lookup that fails for private addresses (net.connect calls it with `all` set or not). */
function guardedLookup(hostname: string, options: LookupOptions, callback: LookupCallback): void {
  lookup(hostname, { ...options, all: true } as LookupAllOptions, (err, addresses) => {
    if (err) return callback(err, []);
    const internal = addresses.find((a) => isPrivateAddress(a.address));
    if (internal) {
      const refused = new Error(
        `refused: ${hostname} resolves to a private or loopback address (${internal.address})`,
      ) as NodeJS.ErrnoException;
      refused.code = REFUSED;
      return callback(refused, []);
    }
    if (options.all) return callback(null, addresses);
    const first = addresses[0];
    return first
      ? callback(null, first.address, first.family)
      : callback(new Error('no address'), []);
  });
}
