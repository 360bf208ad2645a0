import { BATCH_ENDPOINTS, isBatchEndpoint, type BatchEndpoint } from '../protocol/endpoints.ts';
import { EXPIRES_AFTER_MAX_SECONDS, EXPIRES_AFTER_MIN_SECONDS } from '../protocol/file.ts';
import { badRequest } from './app-error.ts';
import { parseCompletionWindowMs } from './completion-window.ts';
import { isIdShaped, MAX_NAME_CHARS, truncateEcho } from './echo-limits.ts';

/** A create-batch request after the synchronous checks. */
export interface CreateBatchParams {
  input_file_id: string;
  endpoint: BatchEndpoint;
  completion_window: string;
  completionWindowMs: number;
  metadata: Record<string, string> | null;
  outputExpiresAfterSeconds: number | null;
  /** Extension: spend cap in USD (`extra_body` in the SDKs). */
  maxCostUsd: number | null;
  /** Extension: failed share (0..1) past which the batch stops early. */
  maxErrorRate: number | null;
}

const KNOWN_KEYS = new Set([
  'input_file_id',
  'endpoint',
  'completion_window',
  'metadata',
  'output_expires_after',
  'max_cost_usd',
  'max_error_rate',
]);
const METADATA_MAX_PAIRS = 16;
const METADATA_KEY_MAX = 64;
const METADATA_VALUE_MAX = 512;

/** The synchronous 400s of POST /v1/batches, with OpenAI's messages, params and codes. */
export function parseCreateBatchParams(body: unknown): CreateBatchParams {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw unparsableBody();
  const input = body as Record<string, unknown>;
  for (const key of Object.keys(input)) {
    if (!KNOWN_KEYS.has(key))
      throw badRequest(`Unrecognized request argument supplied: ${truncateEcho(key)}`);
  }
  const input_file_id = requiredString(input, 'input_file_id');
  if (!isIdShaped(input_file_id)) {
    throw badRequest(
      `Invalid 'input_file_id': expected a file id (letters, digits, '-' or '_', at most ${MAX_NAME_CHARS} characters).`,
      { param: 'input_file_id', wireCode: 'invalid_value' },
    );
  }
  const endpoint = requiredString(input, 'endpoint');
  if (!isBatchEndpoint(endpoint)) throw invalidEndpoint(endpoint);
  const completion_window = requiredString(input, 'completion_window');
  return {
    input_file_id,
    endpoint,
    completion_window,
    completionWindowMs: parseCompletionWindowMs(completion_window),
    metadata: parseMetadata(input.metadata),
    outputExpiresAfterSeconds: parseOutputExpiry(input.output_expires_after),
    maxCostUsd: parseBound(input, 'max_cost_usd', Infinity),
    maxErrorRate: parseBound(input, 'max_error_rate', 1),
  };
}

export function unparsableBody() {
  return badRequest(
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
  );
}

function requiredString(input: Record<string, unknown>, key: string): string {
  const value = input[key];
  if (value === undefined || value === null) {
    throw badRequest(`Missing required parameter: '${key}'.`, {
      param: key,
      wireCode: 'missing_required_parameter',
    });
  }
  if (typeof value !== 'string') throw invalidType(key, value);
  return value;
}

function invalidEndpoint(value: string) {
  const list = BATCH_ENDPOINTS.map((e) => `'${e}'`);
  const supported = `${list.slice(0, -1).join(', ')}, and ${list.at(-1)}`;
  return badRequest(
    `Invalid value: '${truncateEcho(value)}'. Supported values are: ${supported}.`,
    {
      param: 'endpoint',
      wireCode: 'invalid_value',
    },
  );
}

/** OpenAI's wording for a JSON type mismatch ("expected a string, but got an array instead"). */
export function invalidType(param: string, value: unknown, expected = 'a string') {
  return badRequest(
    `Invalid type for '${param}': expected ${expected}, but got ${describeType(value)} instead.`,
    { param, wireCode: 'invalid_type' },
  );
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'an integer' : 'a decimal';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'boolean') return 'a boolean';
  return `a ${typeof value}`;
}

function parseMetadata(value: unknown): Record<string, string> | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw invalidType('metadata', value, 'an object');
  }
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > METADATA_MAX_PAIRS) {
    throw badRequest(
      `Invalid 'metadata': too many properties. Expected an object with at most ${METADATA_MAX_PAIRS} properties, but got an object with ${entries.length} properties instead.`,
      { param: 'metadata', wireCode: 'object_above_max_properties' },
    );
  }
  for (const [key, item] of entries) {
    if (key.length > METADATA_KEY_MAX) {
      throw badRequest(
        `Invalid 'metadata': string too long. Expected a key with maximum length ${METADATA_KEY_MAX}, but got a key with length ${key.length} instead.`,
        { param: 'metadata', wireCode: 'string_above_max_length' },
      );
    }
    if (typeof item !== 'string') throw invalidType(`metadata.${key}`, item);
    if (item.length > METADATA_VALUE_MAX) {
      throw badRequest(
        `Invalid 'metadata.${key}': string too long. Expected a string with maximum length ${METADATA_VALUE_MAX}, but got a string with length ${item.length} instead.`,
        { param: `metadata.${key}`, wireCode: 'string_above_max_length' },
      );
    }
  }
  return Object.fromEntries(entries) as Record<string, string>;
}

function parseOutputExpiry(value: unknown): number | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw invalidType('output_expires_after', value, 'an object');
  }
  const { anchor, seconds } = value as Record<string, unknown>;
  if (anchor !== 'created_at') {
    throw badRequest(
      `Invalid value: '${truncateEcho(String(anchor))}'. Supported values are: 'created_at'.`,
      {
        param: 'output_expires_after.anchor',
        wireCode: 'invalid_value',
      },
    );
  }
  if (
    typeof seconds !== 'number' ||
    !Number.isInteger(seconds) ||
    seconds < EXPIRES_AFTER_MIN_SECONDS ||
    seconds > EXPIRES_AFTER_MAX_SECONDS
  ) {
    throw badRequest(
      `Invalid 'output_expires_after.seconds': expected an integer from ${EXPIRES_AFTER_MIN_SECONDS} to ${EXPIRES_AFTER_MAX_SECONDS}.`,
      { param: 'output_expires_after.seconds', wireCode: 'invalid_value' },
    );
  }
  return seconds;
}

/** An optional number in (0, max] (the cost controls' extension fields). */
function parseBound(input: Record<string, unknown>, param: string, max: number): number | null {
  const value = input[param];
  if (value === undefined || value === null) return null;
  if (typeof value !== 'number') throw invalidType(param, value, 'a number');
  if (!Number.isFinite(value) || value <= 0 || value > max) {
    const range = max === Infinity ? 'a positive number' : `a number above 0 and at most ${max}`;
    throw badRequest(`Invalid '${param}': expected ${range}.`, {
      param,
      wireCode: 'invalid_value',
    });
  }
  return value;
}
