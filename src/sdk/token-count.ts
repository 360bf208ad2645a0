import type { GptEncoding } from 'gpt-tokenizer/GptEncoding';

/**
 * Token counting with gpt-tokenizer, per model family:
 * - cl100k_base: gpt-3.5*, gpt-4 / gpt-4-turbo (not 4o / 4.x), text-embedding-*, text-moderation-*;
 * - o200k_harmony: gpt-oss-*;
 * - o200k_base: gpt-4o, gpt-4.1, gpt-4.5, gpt-5*, o1/o3/o4*, and — a documented fallback — any
 *   model we do not recognise (open models have their own tokenizers; their counts are marked
 *   approximate).
 *
 * Chat messages are counted with the tokenizer's own chat template (ChatML), so a plain-text chat
 * counts exactly `encodeChat(messages, template)` tokens: per message `<|im_start|>`, the role,
 * `<|im_sep|>`, the content and `<|im_end|>` (content + 4 for one-token roles), plus 3 tokens that
 * prime the reply (`<|im_start|>assistant<|im_sep|>`). What the template cannot express is added
 * on top and marks the count approximate: images (765 tokens, a 1024×1024 image at high detail —
 * its real size is unknown offline — or 85 at `detail: "low"`), audio/file parts,
 * `name`, tool calls and tool/function definitions, and JSON schemas (tokenized as their JSON).
 */
export type EncodingName = 'o200k_base' | 'cl100k_base' | 'o200k_harmony';

/** An image at high or auto detail: base 85 + 4 tiles × 170, a 1024×1024 image (OpenAI's formula). */
export const IMAGE_TOKENS_HIGH = 765;
/** An image at `detail: "low"`. */
export const IMAGE_TOKENS_LOW = 85;

/** A model's tokenizer: the encoding and the chat template used for its messages. */
export interface ModelTokenizer {
  encoding: EncodingName;
  /** False when the model is not an OpenAI family we recognise (o200k_base used as fallback). */
  known: boolean;
  count(text: string): number;
  /** Tokens of a plain-text chat, template included. */
  countChat(messages: readonly { role: string; content: string }[]): number;
}

const KNOWN =
  /^(gpt-|o\d|chatgpt-|codex-|text-embedding-|omni-moderation|text-moderation|davinci|babbage)/;
const CL100K = /^(gpt-3\.5|gpt-4(?!o|\.)|text-embedding|text-moderation|davinci|babbage)/;

/** The encoding gpt-tokenizer uses for `model`. */
export function encodingForModel(model: string): EncodingName {
  if (model.startsWith('gpt-oss')) return 'o200k_harmony';
  return CL100K.test(model) ? 'cl100k_base' : 'o200k_base';
}

const loaded = new Map<EncodingName, Promise<GptEncoding>>();

/** Encodings are loaded on first use (each takes a few hundred ms), then cached. */
function loadEncoding(name: EncodingName): Promise<GptEncoding> {
  let encoding = loaded.get(name);
  if (!encoding) {
    encoding = importEncoding(name);
    loaded.set(name, encoding);
  }
  return encoding;
}

async function importEncoding(name: EncodingName): Promise<GptEncoding> {
  switch (name) {
    case 'o200k_base':
      return (await import('gpt-tokenizer/encoding/o200k_base')).default;
    case 'cl100k_base':
      return (await import('gpt-tokenizer/encoding/cl100k_base')).default;
    case 'o200k_harmony':
      return (await import('gpt-tokenizer/encoding/o200k_harmony')).default;
  }
}

/** The chat template model gpt-tokenizer applies for this encoding (and model). */
function templateModel(encoding: EncodingName, model: string) {
  if (encoding === 'o200k_harmony') return 'gpt-oss-20b' as const;
  if (encoding === 'cl100k_base')
    return model.startsWith('gpt-3.5') ? ('gpt-3.5-turbo' as const) : ('gpt-4' as const);
  return 'gpt-4o' as const;
}

const tokenizers = new Map<string, Promise<ModelTokenizer>>();

/** The tokenizer for `model` (see the module comment for the family rules and fallback). */
export function tokenizerFor(model: string): Promise<ModelTokenizer> {
  let tokenizer = tokenizers.get(model);
  if (!tokenizer) {
    tokenizer = buildTokenizer(model);
    tokenizers.set(model, tokenizer);
  }
  return tokenizer;
}

async function buildTokenizer(model: string): Promise<ModelTokenizer> {
  const name = encodingForModel(model);
  const encoding = await loadEncoding(name);
  const template = templateModel(name, model);
  // Special-token text inside user content is counted as ordinary text, as the API does.
  const options = { disallowedSpecial: new Set<string>() };
  return {
    encoding: name,
    known: KNOWN.test(model),
    count: (text) => (text === '' ? 0 : encoding.encode(text, options).length),
    countChat: (messages) => encoding.encodeChat(messages, template, options).length,
  };
}
