/**
 * A model of an upstream's prompt cache (OpenAI's: prompts of 1,024 tokens and more, cached in
 * 128-token blocks, kept a short while). A small LRU of recent prompts: a request finds the
 * longest prefix it shares with a cached prompt of the same start (and the same
 * `prompt_cache_key`), and is then cached itself. Lookups happen when a request arrives, so
 * requests sent together with a shared prefix all find it once the first has arrived.
 */
export class PrefixCache {
  readonly #entries: number;
  readonly #prompts = new Map<string, string>();

  constructor(entries: number) {
    this.#entries = Math.max(1, entries);
  }

  /** Cached tokens of a prompt of `promptTokens` tokens (the simulator counts 4 chars a token). */
  cachedTokens(model: string, text: string, promptTokens: number, key: string | null): number {
    if (promptTokens < MIN_TOKENS) return 0;
    const slot = `${model}\u0000${key ?? ''}\u0000${text.slice(0, SLOT_CHARS)}`;
    const seen = this.#prompts.get(slot);
    this.#prompts.delete(slot);
    this.#prompts.set(slot, text);
    if (this.#prompts.size > this.#entries) {
      const oldest = this.#prompts.keys().next().value;
      if (oldest !== undefined) this.#prompts.delete(oldest);
    }
    if (seen === undefined) return 0;
    const shared = commonPrefix(seen, text);
    const blocks = Math.floor(shared / CHARS_PER_TOKEN / BLOCK_TOKENS);
    const cached = blocks * BLOCK_TOKENS;
    return cached < MIN_TOKENS ? 0 : Math.min(cached, promptTokens);
  }
}

const MIN_TOKENS = 1_024;
const BLOCK_TOKENS = 128;
const CHARS_PER_TOKEN = 4;
/** A prompt's start that routes it to a cache slot (OpenAI hashes about the first 256 tokens). */
const SLOT_CHARS = 1_024;

function commonPrefix(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
}
