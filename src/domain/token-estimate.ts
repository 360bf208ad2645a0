import { createRequire } from 'node:module';

type CountTokens = (text: string) => number;
// Each encoding costs ~35 MB of heap: load one the first time a model of its family needs it
// (only upstreams with a token limit tokenize at all). require() keeps the estimate synchronous.
const requireCjs = createRequire(import.meta.url);
const encodings = new Map<string, CountTokens>();
function encoding(name: 'o200k_base' | 'cl100k_base'): CountTokens {
  let count = encodings.get(name);
  if (!count) {
    count = (requireCjs(`gpt-tokenizer/encoding/${name}`) as { countTokens: CountTokens })
      .countTokens;
    encodings.set(name, count);
  }
  return count;
}

/** Tokens an image is assumed to cost when the real figure is unknowable up front (high detail, 1 tile + base). */
export const IMAGE_TOKEN_ESTIMATE = 765;
/** Chat format overhead per message and for priming the reply (OpenAI cookbook figures). */
const PER_MESSAGE_TOKENS = 4;
const REPLY_PRIMING_TOKENS = 3;

/** What a request is expected to cost in tokens at admission. */
export interface TokenEstimate {
  promptTokens: number;
  /** `max_tokens` / `max_completion_tokens` / `max_output_tokens` × `n`, or the default. */
  maxOutputTokens: number;
}

/**
 * The tokenizer for a model family: cl100k for GPT-3.5/GPT-4 (non-o) and the text-embedding
 * models, o200k for GPT-4o, GPT-4.1, GPT-5, the o-series and — a documented fallback — every
 * model we do not know (open models use other tokenizers; o200k is within ~10–20% for text).
 */
function counterFor(model: string): CountTokens {
  return encoding(
    /^(gpt-3\.5|gpt-4(?!o|\.)|text-embedding|davinci|babbage)/.test(model)
      ? 'cl100k_base'
      : 'o200k_base',
  );
}

/** Estimates the prompt and the output bound of one request body, as an upstream counts at admission. */
export function estimateRequestTokens(
  body: Record<string, unknown>,
  defaultMaxOutputTokens: number,
): TokenEstimate {
  const model = typeof body.model === 'string' ? body.model : '';
  const count = counterFor(model);
  let prompt = 0;
  if (Array.isArray(body.messages)) prompt += countMessages(body.messages, count);
  for (const key of ['input', 'prompt', 'instructions'] as const)
    prompt += countContent(body[key], count);
  if (body.tools !== undefined) prompt += count(JSON.stringify(body.tools));
  const choices = typeof body.n === 'number' && body.n > 0 ? body.n : 1;
  const maxOut = firstNumber(body.max_completion_tokens, body.max_tokens, body.max_output_tokens);
  const embedding =
    Array.isArray(body.input) &&
    body.messages === undefined &&
    maxOut === undefined &&
    /embedding/.test(model);
  return {
    promptTokens: prompt,
    maxOutputTokens: embedding ? 0 : (maxOut ?? defaultMaxOutputTokens) * choices,
  };
}

function countMessages(messages: unknown[], count: (text: string) => number): number {
  let total = REPLY_PRIMING_TOKENS;
  for (const message of messages) {
    total += PER_MESSAGE_TOKENS;
    if (message && typeof message === 'object')
      total += countContent((message as { content?: unknown }).content, count);
  }
  return total;
}

/** Text parts are tokenized; images are a fixed estimate; anything else is tokenized as JSON. */
function countContent(content: unknown, count: (text: string) => number): number {
  if (content === undefined || content === null) return 0;
  if (typeof content === 'string') return count(content);
  if (Array.isArray(content))
    return content.reduce<number>((n, part) => n + countPart(part, count), 0);
  return count(JSON.stringify(content));
}

function countPart(part: unknown, count: (text: string) => number): number {
  if (typeof part === 'string') return count(part);
  if (typeof part === 'number') return 1;
  if (!part || typeof part !== 'object') return 0;
  const p = part as { type?: unknown; text?: unknown; content?: unknown };
  if (typeof p.type === 'string' && /image/.test(p.type)) return IMAGE_TOKEN_ESTIMATE;
  if (typeof p.text === 'string') return count(p.text);
  if (p.content !== undefined) return PER_MESSAGE_TOKENS + countContent(p.content, count);
  return count(JSON.stringify(part));
}

function firstNumber(...values: unknown[]): number | undefined {
  for (const v of values) if (typeof v === 'number' && v >= 0) return v;
  return undefined;
}
