import type { BatchError } from '../protocol/batch.ts';
import { ENDPOINT_LABELS, type BatchEndpoint } from '../protocol/endpoints.ts';
import { jsonNestingDepth } from '../lib/json-depth.ts';
import { MAX_NAME_CHARS, truncateEcho } from './echo-limits.ts';

/** Limits that keep one hostile line from hurting anything downstream. */
export interface LineLimits {
  /** @default 1_048_576 (1 MiB) */
  maxLineBytes: number;
  /** @default 64 */
  maxJsonDepth: number;
}

/** A line that passed every per-line check. `body` is the compact JSON sent upstream. */
export interface ValidLine {
  custom_id: string;
  model: string;
  upstream: string;
  readonly body: string;
  /** How many embedding inputs the line carries (0 for other endpoints). */
  embeddingInputs: number;
}

export type LineVerdict = { ok: true; line: ValidLine } | { ok: false; error: BatchError };

export interface LineContext {
  endpoint: BatchEndpoint;
  limits: LineLimits;
  /** Name of the upstream serving `model`, or null when no upstream serves it. */
  routeModel(model: string): string | null;
}

/**
 * Body fields that would let a line choose its own upstream or credentials; the upstream is
 * chosen only by server configuration and `model` (design.md invariant 10).
 */
export const FORBIDDEN_BODY_KEYS = [
  'api_base',
  'base_url',
  'api_key',
  'api_version',
  'api_type',
  'organization',
  'extra_headers',
  'extra_query',
  'extra_body',
  'custom_llm_provider',
  'deployment_id',
] as const;

/** Compared without case, `_` or `-`, so `API_BASE`, `apiBase` and `api-base` are refused too. */
const normalizeKey = (key: string): string => key.toLowerCase().replace(/[_-]/g, '');
const FORBIDDEN_NORMALIZED = new Set<string>(FORBIDDEN_BODY_KEYS.map(normalizeKey));
/**
 * Fields whose content is the model's input or a schema (a tool may well take an `api_key`
 * argument): never read as options by an upstream, so not searched. Every other object in the
 * body is (LiteLLM-style proxies honour `extra_body`, `metadata`, `litellm_params`, …).
 */
const CONTENT_KEYS = new Set([
  'messages',
  'input',
  'prompt',
  'instructions',
  'tools',
  'functions',
  'tool_choice',
  'function_call',
  'response_format',
  'text',
  'prediction',
]);

/**
 * Path (`api_base`, `extra_body.API_BASE`) of the first field that would pick an upstream or
 * credentials, at the top of the body or nested in its option objects; null when there is none.
 */
export function forbiddenBodyPath(body: Record<string, unknown>, depth = 0): string | null {
  for (const [key, value] of Object.entries(body)) {
    if (FORBIDDEN_NORMALIZED.has(normalizeKey(key))) return truncateEcho(key);
    if (depth === 0 && CONTENT_KEYS.has(key)) continue;
    if (depth < 8 && value !== null && typeof value === 'object' && !Array.isArray(value)) {
      const inner = forbiddenBodyPath(value as Record<string, unknown>, depth + 1);
      if (inner !== null) return `${truncateEcho(key)}.${inner}`;
    }
  }
  return null;
}

const REQUIRED_BODY_FIELD: Record<BatchEndpoint, { key: string; label: string }> = {
  '/v1/chat/completions': { key: 'messages', label: 'Messages' },
  '/v1/completions': { key: 'prompt', label: 'Prompt' },
  '/v1/embeddings': { key: 'input', label: 'Input' },
  '/v1/responses': { key: 'input', label: 'Input' },
  '/v1/moderations': { key: 'input', label: 'Input' },
};
const DEFAULT_MODERATION_MODEL = 'omni-moderation-latest';
/**
 * False when the string holds a lone surrogate. Native `String.prototype.isWellFormed` (ES2024,
 * in Node 20; the project's TS lib is ES2023): several times faster than a `/\p{Cs}/u` test.
 */
const isWellFormed = (text: string): boolean =>
  (text as string & { isWellFormed(): boolean }).isWellFormed();

/** Validates one physical line of a batch input file (spec §3.5 codes and messages). */
export function validateLine(text: string | null, lineNo: number, ctx: LineContext): LineVerdict {
  const fail = (code: string, message: string, param: string | null = null): LineVerdict => ({
    ok: false,
    error: { code, message, param, line: lineNo },
  });
  if (text === null) {
    return fail(
      'invalid_request',
      `This line exceeds the maximum line size of ${ctx.limits.maxLineBytes} bytes.`,
    );
  }
  if (!isWellFormed(text)) {
    // readJsonlLines decodes bytes that are not UTF-8 to lone surrogates, and a string holding one
    // cannot be encoded as UTF-8 at all: refused like unparseable JSON, never repaired to U+FFFD.
    return fail('invalid_json_line', 'This line is not valid UTF-8.');
  }
  if (jsonNestingDepth(text) > ctx.limits.maxJsonDepth) {
    return fail(
      'invalid_request',
      `This line exceeds the maximum JSON nesting depth of ${ctx.limits.maxJsonDepth}.`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return fail('invalid_json_line', 'This line is not parseable as valid JSON.');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    return fail('invalid_json_line', 'This line is not a JSON object.');
  }
  return validateRequest(parsed as Record<string, unknown>, ctx, fail);
}

type Fail = (code: string, message: string, param?: string | null) => LineVerdict;

function validateRequest(req: Record<string, unknown>, ctx: LineContext, fail: Fail): LineVerdict {
  for (const key of ['custom_id', 'method', 'url', 'body']) {
    if (req[key] === undefined || req[key] === null) {
      return fail('missing_required_parameter', `Missing required parameter: '${key}'.`, key);
    }
  }
  const { custom_id, method, url, body } = req;
  if (typeof custom_id !== 'string' || custom_id.length === 0 || custom_id.length > 512) {
    return fail(
      'invalid_request',
      'custom_id must be a non-empty string of at most 512 characters.',
      'custom_id',
    );
  }
  if (method !== 'POST')
    return fail('invalid_request', "Only the 'POST' method is supported.", 'method');
  if (url !== ctx.endpoint) {
    return fail(
      'invalid_url',
      'The URL provided for this request does not match the batch endpoint.',
      'url',
    );
  }
  if (typeof body !== 'object' || Array.isArray(body)) {
    return fail('invalid_request', 'The body of this request must be a JSON object.', 'body');
  }
  return validateBody(custom_id, body as Record<string, unknown>, ctx, fail);
}

function validateBody(
  custom_id: string,
  body: Record<string, unknown>,
  ctx: LineContext,
  fail: Fail,
): LineVerdict {
  const forbidden = forbiddenBodyPath(body);
  if (forbidden !== null) {
    return fail(
      'invalid_request',
      `The body parameter '${forbidden}' is not allowed: the upstream is chosen by the server.`,
      `body.${forbidden}`,
    );
  }
  if (body.stream === true) {
    return fail(
      'streaming_unsupported',
      `${ENDPOINT_LABELS[ctx.endpoint]}: Streaming is not supported in the Batch API.`,
      'body.stream',
    );
  }
  const model = requestModel(ctx.endpoint, body);
  if (typeof model !== 'string' || model.length === 0) {
    return fail('invalid_request', 'Model parameter is required.', 'body.model');
  }
  if (model.length > MAX_NAME_CHARS) {
    return fail(
      'invalid_request',
      `The model name is too long: at most ${MAX_NAME_CHARS} characters.`,
      'body.model',
    );
  }
  const required = REQUIRED_BODY_FIELD[ctx.endpoint];
  const hasRequired =
    body[required.key] !== undefined ||
    (ctx.endpoint === '/v1/responses' && body.prompt !== undefined);
  if (!hasRequired) {
    return fail(
      'invalid_request',
      `${required.label} parameter is required.`,
      `body.${required.key}`,
    );
  }
  const upstream = ctx.routeModel(model);
  if (upstream === null) {
    return fail(
      'model_not_found',
      `The provided model '${model}' is not supported by the Batch API.`,
      'body.model',
    );
  }
  const inexact = inexactNumberPath(body);
  if (inexact !== null) {
    const param = `body${inexact}`;
    return fail(
      'invalid_request',
      `The number at '${param}' cannot be sent upstream exactly: numbers in the body must be between ${-Number.MAX_SAFE_INTEGER} and ${Number.MAX_SAFE_INTEGER}.`,
      param,
    );
  }
  const embeddingInputs = ctx.endpoint === '/v1/embeddings' ? countEmbeddingInputs(body.input) : 0;
  return {
    ok: true,
    line: {
      custom_id,
      model,
      upstream,
      // Built on demand: ingest never needs it (lines are sent from the file), and a 600 KB
      // image line would otherwise cost a 600 KB string per line while validating.
      get body() {
        return JSON.stringify(body);
      },
      embeddingInputs,
    },
  };
}

/** The model a request names (moderations default to OpenAI's moderation model). */
export function requestModel(endpoint: string, body: Record<string, unknown>): unknown {
  return body.model ?? (endpoint === '/v1/moderations' ? DEFAULT_MODERATION_MODEL : undefined);
}

function countEmbeddingInputs(input: unknown): number {
  if (!Array.isArray(input)) return 1;
  // A single token array (numbers) is one input; an array of strings or token arrays is many.
  return input.length > 0 && input.every((x) => typeof x === 'number') ? 1 : input.length;
}

/**
 * Path (`.key` / `[index]`) of the first number in `value` that would not survive being parsed
 * as a double and re-serialised for upstream: 1e400 parses to Infinity (written back as null)
 * and integers beyond 2^53 are rounded. Every double of larger magnitude is such an integer, so
 * one bound covers both; fractions like 0.1 or 1e-7 are kept. Null when there is none. The path
 * is built only on the way back from a hit, so a clean body builds no strings.
 */
function inexactNumberPath(value: unknown): string | null {
  if (typeof value === 'number') return Math.abs(value) > Number.MAX_SAFE_INTEGER ? '' : null;
  if (typeof value !== 'object' || value === null) return null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const path = inexactNumberPath(value[i]);
      if (path !== null) return `[${i}]${path}`;
    }
    return null;
  }
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    const path = inexactNumberPath(record[key]);
    if (path !== null) return `.${key}${path}`;
  }
  return null;
}
