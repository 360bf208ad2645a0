import { mulberry32, seedFromHex } from './prng.ts';

/** Deterministic reply text and cheap token estimates (chars / 4, no tokenizer on purpose). */

const WORDS = [
  'alpha',
  'batch',
  'cache',
  'delta',
  'epoch',
  'field',
  'graph',
  'hinge',
  'index',
  'joule',
  'kernel',
  'lemma',
  'model',
  'node',
  'orbit',
  'prism',
  'query',
  'relay',
  'shard',
  'token',
  'union',
  'vector',
  'window',
  'xenon',
  'yield',
  'zone',
  'signal',
  'stream',
  'vertex',
  'matrix',
] as const;

export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

/** Text of a chat/responses content value: a string, or an array of parts with `text`. */
export function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let text = '';
  for (const part of content) {
    if (typeof part === 'string') text += part;
    else if (isRecord(part) && typeof part['text'] === 'string') text += part['text'];
  }
  return text;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The reply length the "model" would choose on its own: 8..64 tokens, from the body hash. */
export function naturalTokens(hashHex: string): number {
  return 8 + (seedFromHex(hashHex, 8) % 57);
}

/**
 * "Simulated reply to: <first 40 chars>" padded with hash-chosen words; one word ≈ one token,
 * so the text has about `tokens` tokens.
 */
export function replyText(prompt: string, hashHex: string, tokens: number): string {
  const snippet = prompt.slice(0, 40).replace(/\s+/g, ' ').trim();
  const parts = ['Simulated', 'reply', 'to:'];
  if (snippet !== '') parts.push(snippet);
  const random = mulberry32(seedFromHex(hashHex, 16));
  const target = Math.max(tokens, 1);
  let count = parts.length + (snippet === '' ? 0 : estimateTokens(snippet)) - 1;
  while (count < target) {
    parts.push(WORDS[Math.floor(random() * WORDS.length)] ?? 'token');
    count += 1;
  }
  return parts.join(' ');
}

/** Completion length honouring a max-tokens cap; `truncated` selects finish_reason 'length'. */
export function completionLength(
  hashHex: string,
  maxTokens: number | null,
): { tokens: number; truncated: boolean } {
  const natural = naturalTokens(hashHex);
  if (maxTokens !== null && maxTokens < natural) return { tokens: maxTokens, truncated: true };
  return { tokens: natural, truncated: false };
}

/** First positive integer among the given body fields, else null. */
export function maxTokensOf(
  body: Record<string, unknown>,
  fields: readonly string[],
): number | null {
  for (const field of fields) {
    const value = body[field];
    if (typeof value === 'number' && Number.isInteger(value) && value > 0) return value;
  }
  return null;
}
