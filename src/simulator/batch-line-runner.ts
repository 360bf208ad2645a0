import { createHash } from 'node:crypto';
import { parseDirective } from './directives.ts';
import { faultError } from './error-bodies.ts';
import { decideOutcome } from './outcome.ts';
import type { SimRoute } from './route-types.ts';
import type { SimState } from './sim-state.ts';
import { isRecord } from './text-synth.ts';

/** One line of a batch input file, parsed. */
export interface SimBatchLine {
  custom_id: string;
  url: string;
  body: Record<string, unknown>;
  model: string;
  /** Prompt tokens the enqueued-token quota counts for it. */
  tokens: number;
}

/** A line's result: the JSONL text (newline included) and which file it goes to. */
export interface SimLineResult {
  file: 'output' | 'error';
  text: string;
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number } | null;
}

/** Parses a line, or says why it is invalid (the code OpenAI's validation reports). */
export function parseBatchLine(
  text: string,
): SimBatchLine | { code: string; message: string; param: string | null } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return {
      code: 'invalid_json_line',
      message: 'This line is not parseable as valid JSON.',
      param: null,
    };
  }
  if (!isRecord(value) || typeof value['custom_id'] !== 'string') return missing('custom_id');
  if (typeof value['url'] !== 'string') return missing('url');
  const body = value['body'];
  if (!isRecord(body)) return missing('body');
  const model = body['model'];
  if (typeof model !== 'string' || model === '')
    return {
      code: 'invalid_request',
      message: 'Model parameter is required.',
      param: 'body.model',
    };
  return {
    custom_id: value['custom_id'],
    url: value['url'],
    body,
    model,
    tokens: Math.ceil(JSON.stringify(body).length / 4),
  };
}

function missing(param: string): { code: string; message: string; param: string } {
  return {
    code: 'missing_required_parameter',
    message: `Missing required parameter: '${param}'.`,
    param,
  };
}

/**
 * Runs one line with the real-time routes' logic (same deterministic replies, same scripted and
 * random faults: `[sim:status=N]` answers N with OpenAI's error body). Never logged as a call.
 */
export function runBatchLine(
  state: SimState,
  routes: ReadonlyMap<string, SimRoute>,
  line: SimBatchLine,
): SimLineResult {
  const raw = JSON.stringify(line.body);
  const requestId = state.newId('req_');
  const route = routes.get(line.url.startsWith('/v1/') ? line.url.slice(3) : line.url);
  const hashHex = createHash('sha256').update(raw).digest('hex');
  // Scripted faults count per body as on the real-time routes (`status=400x1` fails once);
  // socket faults (reset, hang) have no batch equivalent and answer 500.
  const outcome = decideOutcome(state, parseDirective(raw), hashHex);
  let status = outcome.status === 0 ? 500 : outcome.status;
  let body: string;
  if (route === undefined) {
    status = 404;
    body = JSON.stringify({ error: faultError(404, line.model) });
  } else if (status !== 200) {
    body = JSON.stringify({ error: faultError(status, line.model) });
  } else {
    const plan = route.plan(line.body, line.model);
    if (!plan.ok) {
      status = plan.status;
      body = JSON.stringify({ error: plan.error });
    } else {
      body = plan.render({ hashHex, nowMs: state.clock.nowMs(), newId: state.newId }).body;
    }
  }
  const parsed = JSON.parse(body) as Record<string, unknown>;
  const text =
    JSON.stringify({
      id: state.newId('batch_req_'),
      custom_id: line.custom_id,
      response: { status_code: status, request_id: requestId, body: parsed },
      error: null,
    }) + '\n';
  const usage =
    status === 200 && isRecord(parsed['usage'])
      ? (parsed['usage'] as SimLineResult['usage'])
      : null;
  return { file: status === 200 ? 'output' : 'error', text, usage };
}
