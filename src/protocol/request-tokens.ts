import type { BatchEndpoint } from './endpoints.ts';
import type { ModelTokenizer } from './model-tokenizer.ts';

/**
 * An image at high or auto detail: base 85 + 4 tiles × 170, a 1024×1024 image (OpenAI's formula).
 * Its real size is unknowable without fetching or decoding it, so every such image costs this.
 */
export const IMAGE_TOKENS_HIGH = 765;
/** An image at `detail: "low"`: OpenAI charges the base alone, whatever the size. */
export const IMAGE_TOKENS_LOW = 85;

/** Output tokens assumed for a chat/responses request without a `max_tokens`-style bound. */
export const DEFAULT_ASSUMED_MAX_TOKENS = 1_024;

/** Legacy completions default to 16 output tokens when `max_tokens` is absent (OpenAI docs). */
const COMPLETIONS_DEFAULT_MAX_TOKENS = 16;

/** Tokens one request will use: its prompt, and at most this many output tokens. */
export interface RequestTokens {
  input: number;
  maxOutput: number;
  /** No output bound in the body: `defaultMaxTokens` was assumed. */
  assumedMaxOutput: boolean;
  /** False when parts outside the chat template (images, tools, …) were estimated. */
  exact: boolean;
}

/** How to read a body in `countRequestTokens`. */
export interface CountOptions {
  /** The endpoint the body is sent to. @default what the body's shape says (`endpointOfBody`) */
  endpoint?: string | undefined;
  /** Output bound assumed for a chat or responses body that sets none. */
  defaultMaxTokens: number;
  /**
   * Characters counted exactly at most; the rest is extrapolated (ModelTokenizer.sampling), so
   * the work is bounded whatever the body's size. @default no bound (every character counted)
   */
  exactChars?: number | undefined;
}

type Body = Record<string, unknown>;
interface Tally {
  extra: number;
  exact: boolean;
}

/**
 * Counts one request body: the prompt with the model's tokenizer and chat template, images by
 * detail, tools and schemas as their JSON; the output bound from the endpoint's own field × `n`.
 */
export function countRequestTokens(
  body: Body,
  tokenizer: ModelTokenizer,
  options: CountOptions,
): RequestTokens {
  const tk = options.exactChars === undefined ? tokenizer : tokenizer.sampling(options.exactChars);
  const n = typeof body.n === 'number' && body.n > 0 ? body.n : 1;
  const bound = (...keys: string[]): { maxOutput: number; assumedMaxOutput: boolean } => {
    const value = keys.map((k) => body[k]).find((v) => typeof v === 'number' && v >= 0);
    return typeof value === 'number'
      ? { maxOutput: value * n, assumedMaxOutput: false }
      : { maxOutput: options.defaultMaxTokens * n, assumedMaxOutput: true };
  };
  switch (options.endpoint ?? endpointOfBody(body)) {
    case '/v1/chat/completions':
      return { ...chatInput(body, tk), ...bound('max_completion_tokens', 'max_tokens') };
    case '/v1/responses':
      return { ...responsesInput(body, tk), ...bound('max_output_tokens') };
    case '/v1/completions': {
      const out = bound('max_tokens');
      const maxOutput = out.assumedMaxOutput ? COMPLETIONS_DEFAULT_MAX_TOKENS * n : out.maxOutput;
      return { ...plainInput(body.prompt, tk), maxOutput, assumedMaxOutput: false };
    }
    default:
      return { ...plainInput(body.input, tk), maxOutput: 0, assumedMaxOutput: false };
  }
}

/**
 * The endpoint a body is for, read from its shape: the scheduler admits bodies without their
 * URL. `messages` is chat, `prompt` is completions; an `input` goes to embeddings when the body
 * has embedding-only fields or an embedding model, to moderations for a moderation model, else
 * to responses.
 */
export function endpointOfBody(body: Body): BatchEndpoint {
  if (body.messages !== undefined) return '/v1/chat/completions';
  if (body.prompt !== undefined) return '/v1/completions';
  const model = typeof body.model === 'string' ? body.model : '';
  if (body.dimensions !== undefined || body.encoding_format !== undefined || /embed/.test(model))
    return '/v1/embeddings';
  if (/moderation/.test(model)) return '/v1/moderations';
  return '/v1/responses';
}

function chatInput(body: Body, tk: ModelTokenizer): { input: number; exact: boolean } {
  const tally: Tally = { extra: 0, exact: true };
  const messages = Array.isArray(body.messages) ? body.messages : [];
  const plain = messages.map((m) => flattenMessage(m, tk, tally));
  for (const key of ['tools', 'functions', 'response_format'] as const) {
    if (body[key] !== undefined) addJson(body[key], tk, tally);
  }
  return { input: tk.countChat(plain) + tally.extra, exact: tally.exact };
}

function responsesInput(body: Body, tk: ModelTokenizer): { input: number; exact: boolean } {
  const tally: Tally = { extra: 0, exact: true };
  const plain: { role: string; content: string }[] = [];
  if (typeof body.instructions === 'string')
    plain.push({ role: 'system', content: body.instructions });
  if (typeof body.input === 'string') plain.push({ role: 'user', content: body.input });
  else if (Array.isArray(body.input))
    plain.push(...body.input.map((m) => flattenMessage(m, tk, tally)));
  for (const key of ['tools', 'text'] as const)
    if (body[key] !== undefined) addJson(body[key], tk, tally);
  return { input: tk.countChat(plain) + tally.extra, exact: tally.exact };
}

/** A message as plain text for the template; what the template cannot hold goes to `tally`. */
function flattenMessage(
  message: unknown,
  tk: ModelTokenizer,
  tally: Tally,
): { role: string; content: string } {
  if (message === null || typeof message !== 'object') {
    tally.exact = false;
    return { role: 'user', content: '' };
  }
  const m = message as Record<string, unknown>;
  const role = typeof m.role === 'string' ? m.role : 'user';
  if (typeof m.name === 'string') addText(m.name, tk, tally, 1);
  if (m.tool_calls !== undefined) addJson(m.tool_calls, tk, tally);
  if (m.function_call !== undefined) addJson(m.function_call, tk, tally);
  return { role, content: contentText(m.content, tk, tally) };
}

/** Text parts are joined; images get the fixed estimate; other parts are counted as JSON. */
function contentText(content: unknown, tk: ModelTokenizer, tally: Tally): string {
  if (typeof content === 'string') return content;
  if (content === null || content === undefined) return '';
  if (!Array.isArray(content)) {
    addJson(content, tk, tally);
    return '';
  }
  const texts: string[] = [];
  for (const part of content) {
    const p = (part ?? {}) as Record<string, unknown>;
    if (typeof p.text === 'string') texts.push(p.text);
    else if (typeof p.type === 'string' && p.type.includes('image')) addImage(p, tally);
    else addJson(part, tk, tally);
  }
  return texts.join('\n');
}

/** Chat puts `detail` inside `image_url`; the Responses API's `input_image` puts it on the part. */
function addImage(part: Record<string, unknown>, tally: Tally): void {
  const detail = (part.image_url as { detail?: unknown } | undefined)?.detail ?? part.detail;
  tally.extra += detail === 'low' ? IMAGE_TOKENS_LOW : IMAGE_TOKENS_HIGH;
  tally.exact = false;
}

function addText(text: string, tk: ModelTokenizer, tally: Tally, overhead = 0): void {
  tally.extra += tk.count(text) + overhead;
  tally.exact = false;
}

function addJson(value: unknown, tk: ModelTokenizer, tally: Tally): void {
  addText(JSON.stringify(value) ?? '', tk, tally);
}

/** Completions prompts, embeddings and moderation inputs: strings, token arrays, or lists of them. */
function plainInput(input: unknown, tk: ModelTokenizer): { input: number; exact: boolean } {
  if (typeof input === 'string') return { input: tk.count(input), exact: true };
  if (!Array.isArray(input)) return { input: 0, exact: input === undefined };
  if (input.every((x) => typeof x === 'number')) return { input: input.length, exact: true };
  let total = 0;
  let exact = true;
  for (const item of input) {
    const one = plainInput(
      typeof item === 'object' && item !== null && 'text' in item
        ? (item as { text: unknown }).text
        : item,
      tk,
    );
    total += one.input;
    exact &&= one.exact;
  }
  return { input: total, exact };
}
