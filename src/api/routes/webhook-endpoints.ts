import { Hono } from 'hono';
import { z } from 'zod';
import { AppError, badRequest } from '../../domain/app-error.ts';
import { invalidType } from '../../domain/create-batch-params.ts';
import { newWebhookEndpointId, newWebhookSecret } from '../../domain/ids.ts';
import {
  ENV_ENDPOINT_ID,
  WEBHOOK_EVENT_TYPES,
  type WebhookDeliveryRecord,
  type WebhookEndpointRecord,
  type WebhookEventType,
} from '../../domain/webhooks.ts';
import { toUnixSeconds } from '../../lib/clock.ts';
import { refusedTargetReason } from '../../lib/private-address.ts';
import type { ApiDeps, ApiEnv } from '../api-deps.ts';
import { parseQuery } from '../parse-query.ts';
import { readJsonBody } from '../read-json-body.ts';

const deliveriesQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  after: z.coerce.number().int().positive().optional(),
});

const endpointNotFound = (id: string): AppError =>
  new AppError('not_found', `No webhook endpoint found with id '${id}'.`, { param: 'id' });

/**
 * /v1/webhook_endpoints (an openbatch extension): per-project endpoints that receive OpenAI's
 * `batch.*` events signed the Standard Webhooks way, and each endpoint's deliveries.
 */
export function webhookEndpointsRoutes(deps: ApiDeps): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();

  app.post('/', async (c) => {
    const { value } = await readJsonBody(c.req.raw, deps.limits.maxJsonBodyBytes, deps.bodies);
    const { url, events } = await parseEndpoint(deps, value);
    const endpoint: WebhookEndpointRecord = {
      id: newWebhookEndpointId(),
      project: c.get('project'),
      url,
      events,
      secret: newWebhookSecret(),
      created_at_ms: deps.clock.nowMs(),
    };
    await deps.store.insertWebhookEndpoint(endpoint);
    // The secret is shown here only: receivers need it to verify signatures.
    return c.json({ ...toEndpointObject(endpoint), secret: endpoint.secret });
  });

  app.get('/', async (c) => {
    const endpoints = (await deps.store.listWebhookEndpoints(c.get('project'))).map(
      toEndpointObject,
    );
    const env = deps.webhooks.envEndpointUrl;
    if (env !== null)
      endpoints.unshift({
        id: ENV_ENDPOINT_ID,
        object: 'webhook_endpoint',
        url: env,
        events: [...WEBHOOK_EVENT_TYPES],
        created_at: null,
      });
    return c.json({ object: 'list', data: endpoints, has_more: false });
  });

  app.delete('/:id', async (c) => {
    const id = c.req.param('id');
    if (id === ENV_ENDPOINT_ID)
      throw badRequest('The environment endpoint is removed by unsetting OPENBATCH_WEBHOOK_URL.');
    if (!(await deps.store.deleteWebhookEndpoint(c.get('project'), id))) throw endpointNotFound(id);
    return c.json({ id, object: 'webhook_endpoint', deleted: true });
  });

  app.get('/:id/deliveries', async (c) => {
    const id = c.req.param('id');
    const project = c.get('project');
    const query = parseQuery(deliveriesQuerySchema, c.req.query());
    const endpoint = await deps.store.getWebhookEndpoint(id);
    const known = id === ENV_ENDPOINT_ID || endpoint?.project === project;
    if (!known) throw endpointNotFound(id);
    const rows = await deps.store.listWebhookDeliveries(project, id, {
      limit: query.limit,
      before: query.after,
    });
    const data = rows.slice(0, query.limit).map(toDeliveryObject);
    return c.json({ object: 'list', data, has_more: rows.length > query.limit });
  });

  return app;
}

async function parseEndpoint(
  deps: ApiDeps,
  value: unknown,
): Promise<{ url: string; events: WebhookEventType[] }> {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw badRequest('Expected a JSON object as the request body.');
  const { url, events, ...rest } = value as Record<string, unknown>;
  const extra = Object.keys(rest)[0];
  if (extra !== undefined) throw badRequest(`Unrecognized request argument supplied: ${extra}`);
  if (url === undefined)
    throw badRequest("Missing required parameter: 'url'.", {
      param: 'url',
      wireCode: 'missing_required_parameter',
    });
  if (typeof url !== 'string') throw invalidType('url', url);
  const refused = deps.webhooks.allowPrivate ? null : await refusedTargetReason(url);
  const scheme = URL.canParse(url) ? new URL(url).protocol : '';
  if (refused !== null || (scheme !== 'http:' && scheme !== 'https:'))
    throw badRequest(`Invalid 'url': ${refused ?? 'expected an http or https URL'}.`, {
      param: 'url',
      wireCode: 'invalid_value',
    });
  return { url, events: parseEvents(events) };
}

function parseEvents(events: unknown): WebhookEventType[] {
  if (events === undefined || events === null) return [...WEBHOOK_EVENT_TYPES];
  const known = WEBHOOK_EVENT_TYPES as readonly unknown[];
  if (!Array.isArray(events) || events.length === 0 || !events.every((e) => known.includes(e)))
    throw badRequest(
      `Invalid 'events': expected a non-empty array of ${WEBHOOK_EVENT_TYPES.join(', ')}.`,
      { param: 'events', wireCode: 'invalid_value' },
    );
  return [...new Set(events as WebhookEventType[])];
}

function toEndpointObject(e: WebhookEndpointRecord) {
  return {
    id: e.id,
    object: 'webhook_endpoint' as const,
    url: e.url,
    events: e.events as string[],
    created_at: toUnixSeconds(e.created_at_ms) as number | null,
  };
}

function toDeliveryObject(d: WebhookDeliveryRecord) {
  const sec = (ms: number | null) => (ms === null ? null : toUnixSeconds(ms));
  return {
    id: d.delivery_id,
    object: 'webhook_delivery',
    event_id: d.event_id,
    type: d.type,
    batch_id: d.batch_id,
    status: d.state,
    attempts: d.attempts,
    last_status_code: d.last_status,
    last_error: d.last_error,
    created_at: toUnixSeconds(d.created_at_ms),
    next_attempt_at: d.state === 'pending' ? toUnixSeconds(d.next_attempt_ms) : null,
    finished_at: sec(d.finished_at_ms),
  };
}
