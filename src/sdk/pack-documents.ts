import { tokenizerFor } from '../protocol/model-tokenizer.ts';
import { countRequestTokens } from '../protocol/request-tokens.ts';
import type { ResultLine } from './job-results.ts';
import type { RequestLine } from './request-lines.ts';

/** A short document to process; `id` keys its answer. */
export interface PackDocument {
  id: string;
  text: string;
}

/** How to pack documents into requests. */
export interface PackOptions {
  /** Documents per request. */
  k: number;
  model: string;
  /** The task, applied to every document ("Summarise in one sentence."). */
  instructions: string;
  /** JSON schema of one document's answer. @default { type: 'string' } */
  answerSchema?: Record<string, unknown> | undefined;
  /** Output tokens allowed per document; a request gets k × this. @default 256 */
  maxTokensPerDocument?: number | undefined;
  /** Extra body fields for every request (temperature, seed, …). */
  body?: Record<string, unknown> | undefined;
  /** Prefix of the generated custom_ids. @default 'pack' */
  idPrefix?: string | undefined;
}

/** Prompt tokens of the packed requests against one request per document. */
export interface PackingTokens {
  packed: number;
  single: number;
  saved: number;
}

/** Which documents one packed request carries. */
export interface PackedGroup {
  custom_id: string;
  documentIds: string[];
}

/** Packed requests, which documents each carries, and the tokens packing saves. */
export interface PackedDocuments {
  requests: RequestLine[];
  groups: PackedGroup[];
  answerSchema: Record<string, unknown>;
  tokens: PackingTokens;
}

/** One document's outcome after unpacking. */
export type DocumentResult =
  | { id: string; answer: unknown; error: null }
  | { id: string; answer: null; error: { code: string; message: string } };

const DEFAULT_ANSWER_SCHEMA = { type: 'string' };

/**
 * Packs `k` documents per chat request whose structured-output schema is an object keyed by
 * document id, and reports the prompt tokens saved against one request per document (counted
 * with the model's tokenizer: the instructions and schema are paid once per request, not per
 * document).
 */
export async function packDocuments(
  documents: readonly PackDocument[],
  options: PackOptions,
): Promise<PackedDocuments> {
  if (!Number.isInteger(options.k) || options.k < 1)
    throw new Error('k must be a positive integer');
  const ids = new Set(documents.map((d) => d.id));
  if (ids.size !== documents.length) throw new Error('document ids must be unique');
  const schema = options.answerSchema ?? DEFAULT_ANSWER_SCHEMA;
  const groups: PackedGroup[] = [];
  const requests: RequestLine[] = [];
  for (let i = 0; i < documents.length; i += options.k) {
    const docs = documents.slice(i, i + options.k);
    const custom_id = `${options.idPrefix ?? 'pack'}-${groups.length}`;
    groups.push({ custom_id, documentIds: docs.map((d) => d.id) });
    requests.push({
      custom_id,
      method: 'POST',
      url: '/v1/chat/completions',
      body: packedBody(docs, schema, options),
    });
  }
  const tokens = packingTokens(documents, requests, schema, options);
  return { requests, groups, answerSchema: schema, tokens };
}

function packedBody(
  docs: readonly PackDocument[],
  schema: Record<string, unknown>,
  options: PackOptions,
): Record<string, unknown> {
  const ids = docs.map((d) => d.id);
  return {
    model: options.model,
    messages: [
      {
        role: 'system',
        content: `${options.instructions}\n\nThe user message is a JSON array of documents, each {"id", "text"}. Answer with one JSON object that has one key per document id, whose value is your answer for that document. Answer every document.`,
      },
      { role: 'user', content: JSON.stringify(docs.map((d) => ({ id: d.id, text: d.text }))) },
    ],
    response_format: {
      type: 'json_schema',
      json_schema: {
        name: 'answers_by_document',
        strict: true,
        schema: {
          type: 'object',
          properties: Object.fromEntries(ids.map((id) => [id, schema])),
          required: ids,
          additionalProperties: false,
        },
      },
    },
    max_completion_tokens: docs.length * (options.maxTokensPerDocument ?? 256),
    ...options.body,
  };
}

function packingTokens(
  documents: readonly PackDocument[],
  requests: readonly RequestLine[],
  schema: Record<string, unknown>,
  options: PackOptions,
): PackingTokens {
  const tk = tokenizerFor(options.model);
  const prompt = (body: Record<string, unknown>): number =>
    countRequestTokens(body, tk, { endpoint: '/v1/chat/completions', defaultMaxTokens: 0 }).input;
  const packed = requests.reduce((n, r) => n + prompt(r.body), 0);
  const single = documents.reduce((n, d) => n + prompt(packedBody([d], schema, options)), 0);
  return { packed, single, saved: single - packed };
}

/**
 * Splits each packed answer back into per-document results. A document whose answer is missing
 * or does not match the answer schema — or whose whole request failed — is listed in `retry`,
 * to be sent again on its own (`packDocuments(those, { ...options, k: 1 })`).
 */
export function unpackResults(
  packed: PackedDocuments,
  results: readonly ResultLine[],
): { documents: DocumentResult[]; retry: string[] } {
  const byId = new Map(results.map((r) => [r.custom_id, r]));
  const documents: DocumentResult[] = [];
  const retry: string[] = [];
  for (const group of packed.groups) {
    const answers = answersOf(byId.get(group.custom_id));
    for (const id of group.documentIds) {
      const answer = answers?.[id];
      if (answer !== undefined && matchesSchema(answer, packed.answerSchema)) {
        documents.push({ id, answer, error: null });
        continue;
      }
      retry.push(id);
      const code =
        answers === null
          ? 'request_failed'
          : answer === undefined
            ? 'missing_answer'
            : 'malformed_answer';
      documents.push({
        id,
        answer: null,
        error: { code, message: `No valid answer for document ${id} (${code}).` },
      });
    }
  }
  return { documents, retry };
}

/** The answer object of a successful chat response, or null. */
function answersOf(result: ResultLine | undefined): Record<string, unknown> | null {
  const response = result?.response;
  if (!response || response.status_code >= 400) return null;
  const choices = (response.body as { choices?: { message?: { content?: unknown } }[] } | null)
    ?.choices;
  const content = choices?.[0]?.message?.content;
  if (typeof content !== 'string') return null;
  try {
    const parsed: unknown = JSON.parse(content);
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

/** A shallow check of the schema's `type` and `required` keys (enough to catch malformed answers). */
function matchesSchema(value: unknown, schema: Record<string, unknown>): boolean {
  const type = schema.type;
  const is: Record<string, (v: unknown) => boolean> = {
    string: (v) => typeof v === 'string',
    number: (v) => typeof v === 'number',
    integer: (v) => Number.isInteger(v),
    boolean: (v) => typeof v === 'boolean',
    null: (v) => v === null,
    array: (v) => Array.isArray(v),
    object: (v) => v !== null && typeof v === 'object' && !Array.isArray(v),
  };
  const types = Array.isArray(type) ? (type as string[]) : typeof type === 'string' ? [type] : [];
  if (types.length > 0 && !types.some((t) => is[t]?.(value) ?? true)) return false;
  const required = Array.isArray(schema.required) ? (schema.required as string[]) : [];
  return required.every((key) => value !== null && typeof value === 'object' && key in value);
}
