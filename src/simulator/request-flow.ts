import { createHash } from 'node:crypto';
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { parseDirective } from './directives.ts';
import type { SimDirective } from './directives.ts';
import { formatDuration } from './duration-format.ts';
import { errorJson, faultError, invalidJson, missingParam, overloaded } from './error-bodies.ts';
import type { ErrorSpec } from './error-bodies.ts';
import { decideOutcome } from './outcome.ts';
import type { Outcome } from './outcome.ts';
import type { RateDecision } from './rate-window.ts';
import { deliver, isGone } from './reply-writer.ts';
import type { RoutePlan, SimRoute } from './route-types.ts';
import type { SimState } from './sim-state.ts';
import { isRecord } from './text-synth.ts';
import type { SimFault } from './types.ts';

/**
 * The POST pipeline: parse → validate → rate limit → capacity slot → decide outcome (and log it)
 * → latency → deliver. Each step answers on its own when it ends the request.
 */

export interface RequestInfo {
  path: string;
  hashHex: string;
  directive: SimDirective | null;
  model: string | null;
}

type RateHeaders = Record<string, string> | null;

const JSON_TYPE = 'application/json';
const SSE_TYPE = 'text/event-stream; charset=utf-8';

export function handlePost(
  state: SimState,
  res: ServerResponse,
  path: string,
  route: SimRoute,
  raw: Buffer,
): void {
  const text = raw.toString('utf8');
  const info: RequestInfo = {
    path,
    hashHex: createHash('sha256').update(raw).digest('hex'),
    directive: parseDirective(text),
    model: null,
  };
  const body = parseObject(text);
  if (body === null) return answerError(state, res, info, 400, invalidJson(), null);
  const model =
    typeof body['model'] === 'string' && body['model'] !== '' ? body['model'] : route.defaultModel;
  if (model === null) return answerError(state, res, info, 400, missingParam('model'), null);
  info.model = model;
  const plan = route.plan(body, model, state.prefixCache);
  if (!plan.ok)
    return answerError(
      state,
      res,
      info,
      plan.status,
      plan.error,
      state.rate?.headers(model) ?? null,
    );
  admit(state, res, info, model, plan);
}

function parseObject(text: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(text);
    return isRecord(value) ? value : null;
  } catch {
    return null;
  }
}

function admit(
  state: SimState,
  res: ServerResponse,
  info: RequestInfo,
  model: string,
  plan: RoutePlan,
): void {
  let rateHeaders: RateHeaders = null;
  if (state.rate !== null) {
    const decision = state.rate.admit(model, plan.admissionTokens);
    if (!decision.allowed) return answerRateLimited(state, res, info, model, decision);
    rateHeaders = decision.headers;
  }
  const gate = state.gate;
  if (gate === null) return serve(state, res, info, plan, rateHeaders);
  const queued = gate.acquire(() => {
    // The client may have given up while queued; its slot goes straight to the next one.
    if (isGone(res)) return gate.release();
    res.once('close', () => gate.release());
    serve(state, res, info, plan, rateHeaders);
  });
  if (!queued) answerError(state, res, info, 503, overloaded(), rateHeaders, 'overloaded');
}

function serve(
  state: SimState,
  res: ServerResponse,
  info: RequestInfo,
  plan: RoutePlan,
  rateHeaders: RateHeaders,
): void {
  const outcome = decideOutcome(state, info.directive, info.hashHex);
  // Logged when decided, before the wait: a test counting paid calls sees it even if the client leaves.
  logCall(state, info, outcome.status, outcome.fault);
  if (outcome.latencyMs <= 0) return respond(state, res, info, plan, outcome, rateHeaders);
  setTimeout(respond, outcome.latencyMs, state, res, info, plan, outcome, rateHeaders).unref();
}

function respond(
  state: SimState,
  res: ServerResponse,
  info: RequestInfo,
  plan: RoutePlan,
  outcome: Outcome,
  rateHeaders: RateHeaders,
): void {
  if (isGone(res)) return;
  const delivery = { action: outcome.action, trickleMs: outcome.trickleMs };
  if (outcome.status === 0) return deliver(res, 0, {}, '', delivery);
  if (outcome.status !== 200) {
    const headers = headersFor(state, JSON_TYPE, rateHeaders);
    if (outcome.status === 429) addRetryAfter(headers, state.retryAfterMs);
    return deliver(
      res,
      outcome.status,
      headers,
      errorJson(faultError(outcome.status, info.model)),
      delivery,
    );
  }
  const reply = plan.render({
    hashHex: info.hashHex,
    nowMs: state.clock.nowMs(),
    newId: state.newId,
  });
  const headers = headersFor(state, reply.kind === 'sse' ? SSE_TYPE : JSON_TYPE, rateHeaders);
  deliver(res, 200, headers, reply.body, delivery);
}

function answerRateLimited(
  state: SimState,
  res: ServerResponse,
  info: RequestInfo,
  model: string,
  decision: RateDecision,
): void {
  const perMin = decision.kind === 'tokens' ? 'tokens per min (TPM)' : 'requests per min (RPM)';
  const error: ErrorSpec = {
    message:
      `Rate limit reached for ${model} in organization org-sim on ${perMin}: Limit ${decision.limit}, ` +
      `Used ${decision.used}, Requested ${decision.requested}. Please try again in ${formatDuration(decision.retryAfterMs)}. ` +
      'Visit https://platform.openai.com/account/rate-limits to learn more.',
    type: decision.kind ?? 'requests',
    param: null,
    code: 'rate_limit_exceeded',
  };
  const headers = headersFor(state, JSON_TYPE, decision.headers);
  addRetryAfter(headers, decision.retryAfterMs);
  logCall(state, info, 429, 'rate_limited');
  deliver(res, 429, headers, errorJson(error), { action: null, trickleMs: null });
}

/** Answers an error at once (validation, overload): no latency, logged with its status. */
function answerError(
  state: SimState,
  res: ServerResponse,
  info: RequestInfo,
  status: number,
  error: ErrorSpec,
  rateHeaders: RateHeaders,
  fault: SimFault | null = null,
): void {
  logCall(state, info, status, fault);
  const headers = headersFor(state, JSON_TYPE, rateHeaders);
  deliver(res, status, headers, errorJson(error), { action: null, trickleMs: null });
}

export function headersFor(
  state: SimState,
  contentType: string,
  rateHeaders: RateHeaders,
): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {
    'content-type': contentType,
    'x-request-id': state.newId('req_'),
  };
  if (rateHeaders !== null) Object.assign(headers, rateHeaders);
  return headers;
}

function addRetryAfter(headers: OutgoingHttpHeaders, retryAfterMs: number): void {
  headers['retry-after-ms'] = String(retryAfterMs);
  headers['retry-after'] = String(Math.ceil(retryAfterMs / 1000));
}

function logCall(state: SimState, info: RequestInfo, status: number, fault: SimFault | null): void {
  state.log.append({
    atMs: state.clock.nowMs(),
    path: info.path,
    model: info.model,
    status,
    bodySha256: info.hashHex,
    marker: info.directive?.marker ?? null,
    fault,
  });
}
