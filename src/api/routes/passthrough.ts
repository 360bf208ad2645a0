import { Readable } from 'node:stream';
import { Hono } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { BATCH_ENDPOINTS } from '../../protocol/endpoints.ts';
import { AppError, badRequest } from '../../domain/app-error.ts';
import { MAX_NAME_CHARS } from '../../domain/echo-limits.ts';
import { forbiddenBodyPath } from '../../domain/line-validation.ts';
import { coerceError } from '../../lib/coerce-error.ts';
import type { Upstream } from '../../providers/provider.ts';
import type { ApiDeps, ApiEnv } from '../api-deps.ts';
import { readJsonBody } from '../read-json-body.ts';

/**
 * The real-time endpoints, forwarded to the upstream serving the body's model with status, body
 * and streaming passed through, so one base URL serves both batch and real-time traffic.
 */
export function passthroughRoutes(deps: ApiDeps): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();

  for (const endpoint of BATCH_ENDPOINTS) {
    app.post(endpoint.replace(/^\/v1/, ''), async (c) => {
      const { text, value } = await readJsonBody(
        c.req.raw,
        deps.limits.maxJsonBodyBytes,
        deps.bodies,
      );
      const { upstream, model, body } = routeBody(deps, value, endpoint === '/v1/moderations');
      const signal = c.req.raw.signal;
      // Same limits as batch traffic, ahead of it in the queue.
      const settle = await deps.engine.admitRealtime(upstream.name, model, body, signal);
      let answer: Awaited<ReturnType<typeof forward>>;
      try {
        answer = await forward(upstream, { method: 'POST', path: endpoint, body: text, signal });
      } catch (err) {
        settle({ status: null, headers: null, usage: null, retryAfterMs: null, overloaded: false });
        throw err;
      }
      settle({
        status: answer.status,
        headers: answer.headers,
        usage: null,
        retryAfterMs: null,
        overloaded: answer.status === 503,
      });
      return new Response(Readable.toWeb(answer.body) as ReadableStream, {
        status: answer.status,
        headers: answer.headers,
      });
    });
  }

  app.get('/models', async (c) => {
    const all = deps.upstreams.all();
    const lists = await Promise.allSettled(all.map((u) => listModels(u, c.req.raw.signal)));
    // Only models this server would route to that upstream: never list what would then 404.
    const data = lists.flatMap((r, i) =>
      r.status === 'fulfilled'
        ? r.value.filter((m) => deps.upstreams.resolve(m.id) === all[i])
        : [],
    );
    if (data.length === 0 && lists.some((r) => r.status === 'rejected')) {
      throw new AppError('upstream_unavailable', 'No upstream answered the models list.');
    }
    return c.json({ object: 'list', data });
  });

  return app;
}

function routeBody(
  deps: ApiDeps,
  value: unknown,
  isModeration: boolean,
): { upstream: Upstream; model: string; body: Record<string, unknown> } {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw badRequest('The request body must be a JSON object.');
  const body = value as Record<string, unknown>;
  const forbidden = forbiddenBodyPath(body);
  if (forbidden !== null)
    throw badRequest(`Unrecognized request argument supplied: ${forbidden}`, { param: forbidden });
  const model = body.model ?? (isModeration ? 'omni-moderation-latest' : undefined);
  if (typeof model !== 'string' || model === '') {
    throw badRequest('you must provide a model parameter', {
      param: 'model',
      wireCode: 'missing_required_parameter',
    });
  }
  if (model.length > MAX_NAME_CHARS) {
    throw badRequest(`Invalid 'model': string too long (at most ${MAX_NAME_CHARS} characters).`, {
      param: 'model',
      wireCode: 'string_above_max_length',
    });
  }
  const upstream = deps.upstreams.resolve(model);
  if (!upstream) {
    throw new AppError(
      'not_found',
      `The model \`${model}\` does not exist or you do not have access to it.`,
      { wireCode: 'model_not_found', param: 'model' },
    );
  }
  return { upstream, model, body };
}

async function forward(upstream: Upstream, req: Parameters<Upstream['forward']>[0]) {
  try {
    const answer = await upstream.forward(req);
    return { ...answer, status: answer.status as ContentfulStatusCode };
  } catch (err) {
    throw new AppError(
      'upstream_unavailable',
      `The upstream '${upstream.name}' could not be reached: ${coerceError(err).message}`,
    );
  }
}

async function listModels(upstream: Upstream, signal: AbortSignal): Promise<{ id: string }[]> {
  const answer = await upstream.forward({ method: 'GET', path: '/v1/models', signal });
  const chunks: Buffer[] = [];
  for await (const chunk of answer.body) chunks.push(chunk as Buffer);
  if (answer.status !== 200) return [];
  const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { data?: { id: string }[] };
  return Array.isArray(parsed.data) ? parsed.data : [];
}
