import { createRequire } from 'node:module';
import type { GptEncoding } from 'gpt-tokenizer/GptEncoding';

/**
 * Token counting with gpt-tokenizer, per model family — one rule for the server's admission
 * estimate and the SDK's `estimate`:
 * - cl100k_base: gpt-3.5*, gpt-4 / gpt-4-turbo (not 4o / 4.x), text-embedding-*, text-moderation-*;
 * - o200k_harmony: gpt-oss-*;
 * - o200k_base: gpt-4o, gpt-4.1, gpt-4.5, gpt-5*, o1/o3/o4*, omni-moderation, and — a documented
 *   fallback — any model we do not recognise (open models have their own tokenizers; o200k is
 *   within ~10–20% for text, and their counts are marked approximate).
 *
 * Chat messages are counted with the tokenizer's own chat template (ChatML), so a plain-text chat
 * counts exactly `encodeChat(messages, template)` tokens: per message `<|im_start|>`, the role,
 * `<|im_sep|>`, the content and `<|im_end|>` (content + 4 for one-token roles), plus 3 tokens that
 * prime the reply (`<|im_start|>assistant<|im_sep|>`). What the template cannot express is
 * estimated on top (see request-tokens.ts).
 */
export type EncodingName = 'o200k_base' | 'cl100k_base' | 'o200k_harmony';

/** A tokenizer: the encoding and the chat template used for a model's messages. */
export interface ModelTokenizer {
  encoding: EncodingName;
  count(text: string): number;
  /** Tokens of a plain-text chat, template included. */
  countChat(messages: readonly { role: string; content: string }[]): number;
  /**
   * A tokenizer for one request that counts at most `exactChars` characters exactly (each text
   * at most SAMPLE_CHARS) and extrapolates the rest from what it counted: bounded work whatever
   * the request's size, for the scheduler's admission path.
   */
  sampling(exactChars: number): ModelTokenizer;
}

/**
 * BPE is quadratic in the length of one pre-token (a run of one character is one pre-token), so
 * text is counted in pieces of at most this many characters, cut where a run of spaces starts (a
 * pre-token boundary in every encoding here, so the sum is exact) or, in a run with no space, hard.
 */
const PIECE_CHARS = 64;
/** A sampled text is counted exactly up to here; the rest is extrapolated from this prefix. */
const SAMPLE_CHARS = 1_024;
/** Tokens per character assumed before anything was counted (English runs ~0.25). */
const FALLBACK_TOKENS_PER_CHAR = 0.3;

const KNOWN =
  /^(gpt-|o\d|chatgpt-|codex-|text-embedding-|omni-moderation|text-moderation|davinci|babbage)/;
const CL100K = /^(gpt-3\.5|gpt-4(?!o|\.)|text-embedding|text-moderation|davinci|babbage)/;

/** The encoding gpt-tokenizer uses for `model`. */
export function encodingForModel(model: string): EncodingName {
  if (model.startsWith('gpt-oss')) return 'o200k_harmony';
  return CL100K.test(model) ? 'cl100k_base' : 'o200k_base';
}

/** False when `model` is not an OpenAI family we recognise (its count used the fallback). */
export function isKnownModel(model: string): boolean {
  return KNOWN.test(model);
}

// Each encoding costs ~35 MB of heap and a few hundred ms to load: it is loaded the first time a
// model of its family is counted, never at start-up (only upstreams with a token limit count at
// all, and idle RSS matters). require() keeps counting synchronous for the scheduler's hot path.
const requireCjs = createRequire(import.meta.url);
const encodings = new Map<EncodingName, GptEncoding>();

function loadEncoding(name: EncodingName): GptEncoding {
  let encoding = encodings.get(name);
  if (!encoding) {
    encoding = (requireCjs(`gpt-tokenizer/encoding/${name}`) as { default: GptEncoding }).default;
    encodings.set(name, encoding);
  }
  return encoding;
}

type TemplateModel = 'gpt-oss-20b' | 'gpt-3.5-turbo' | 'gpt-4' | 'gpt-4o';

/** The chat template model gpt-tokenizer applies for this encoding (and model). */
function templateModel(encoding: EncodingName, model: string): TemplateModel {
  if (encoding === 'o200k_harmony') return 'gpt-oss-20b';
  if (encoding === 'cl100k_base') return model.startsWith('gpt-3.5') ? 'gpt-3.5-turbo' : 'gpt-4';
  return 'gpt-4o';
}

// Keyed by template, not by model: model names come from request lines, so a map per model
// would grow with whatever a client sends; there are only four templates.
const tokenizers = new Map<TemplateModel, ModelTokenizer>();

/** The tokenizer for `model` (see the module comment for the family rules and fallback). */
export function tokenizerFor(model: string): ModelTokenizer {
  const encoding = encodingForModel(model);
  const template = templateModel(encoding, model);
  let tokenizer = tokenizers.get(template);
  if (!tokenizer) {
    tokenizer = buildTokenizer(encoding, template);
    tokenizers.set(template, tokenizer);
  }
  return tokenizer;
}

function buildTokenizer(name: EncodingName, template: TemplateModel): ModelTokenizer {
  const encoding = loadEncoding(name);
  // Special-token text inside user content is counted as ordinary text, as the API does
  // (gpt-tokenizer's default would throw on a line that merely mentions `<|endoftext|>`).
  const options = { disallowedSpecial: new Set<string>() };
  const exact = (text: string): number => {
    let total = 0;
    for (let at = 0; at < text.length;) {
      const end = pieceEnd(text, at);
      total += encoding.countTokens(text.slice(at, end), options);
      at = end;
    }
    return total;
  };
  // encodeChat encodes each role and content on its own between special tokens, so a chat's
  // count is a sum: the template's fixed tokens are measured once here, and the scheduler's hot
  // path counts with countTokens, about 4× cheaper than building encodeChat's token array.
  const priming = encoding.encodeChat([], template).length;
  const perMessage =
    encoding.encodeChat([{ role: 'user', content: '' }], template).length - priming - exact('user');
  const withCount = (count: (text: string) => number): ModelTokenizer => ({
    encoding: name,
    count,
    countChat: (messages) =>
      messages.reduce((n, m) => n + perMessage + count(m.role) + count(m.content), priming),
    sampling: (exactChars) => withCount(samplingCount(exact, exactChars)),
  });
  return withCount(exact);
}

/** Where the piece starting at `at` ends (see PIECE_CHARS). */
function pieceEnd(text: string, at: number): number {
  const limit = at + PIECE_CHARS;
  if (limit >= text.length) return text.length;
  for (let i = limit; i > at + 1; i--) {
    if (text.charCodeAt(i) === 32 && text.charCodeAt(i - 1) !== 32) return i;
  }
  // No space to cut at: never split a surrogate pair.
  const code = text.charCodeAt(limit);
  return code >= 0xdc00 && code <= 0xdfff ? limit + 1 : limit;
}

/** A count that spends at most `exactChars` characters of exact counting, then extrapolates. */
function samplingCount(exact: (text: string) => number, exactChars: number) {
  let left = exactChars;
  let countedChars = 0;
  let countedTokens = 0;
  return (text: string): number => {
    if (text === '') return 0;
    const sampleChars = Math.min(text.length, SAMPLE_CHARS, left);
    if (sampleChars === 0) {
      const rate = countedChars > 0 ? countedTokens / countedChars : FALLBACK_TOKENS_PER_CHAR;
      return Math.ceil(text.length * rate);
    }
    const sample = sampleChars === text.length ? text : text.slice(0, sampleChars);
    const tokens = exact(sample);
    left -= sampleChars;
    countedChars += sampleChars;
    countedTokens += tokens;
    return sampleChars === text.length ? tokens : Math.ceil((tokens * text.length) / sampleChars);
  };
}
