import { createHash } from 'node:crypto';
import type { ClaimedItem } from '../domain/records.ts';

/**
 * Prompts shorter than this share no prefix worth grouping: OpenAI caches prompts from 1,024
 * tokens on (~4,096 characters), so only lines at least this long are moved.
 */
export const PREFIX_CHARS = 4_096;

/**
 * Prefix-aware order (issue 13): among lines claimed together (all due now), lines of the same
 * batch whose prompts start with the same PREFIX_CHARS characters are sent one after the other,
 * so the upstream's prompt cache still holds the prefix when the next arrives. Groups keep the
 * order of their first line; lines without a long prompt keep their place among the groups.
 */
export class PrefixOrder {
  readonly #keys = new WeakMap<ClaimedItem, string | null>();

  /** `items` regrouped (a new array). */
  order(items: readonly ClaimedItem[]): ClaimedItem[] {
    const groups = new Map<unknown, ClaimedItem[]>();
    for (const item of items) {
      const prefix = this.key(item);
      const key = prefix === null ? item : `${item.batch_id}\u0000${prefix}`;
      const group = groups.get(key);
      if (group) group.push(item);
      else groups.set(key, [item]);
    }
    return [...groups.values()].flat();
  }

  /** Hash of the line's first PREFIX_CHARS prompt characters, or null for a short prompt. */
  key(item: ClaimedItem): string | null {
    let key = this.#keys.get(item);
    if (key === undefined) {
      const prompt = promptStart(item.body);
      key = prompt === null ? null : createHash('sha256').update(prompt).digest('hex').slice(0, 32);
      this.#keys.set(item, key);
    }
    return key;
  }
}

const PROMPT_FIELDS = ['"instructions"', '"messages"', '"input"', '"prompt"'];

/**
 * The first PREFIX_CHARS characters of the body from its first prompt field on, as text: no parse
 * (a body may be hundreds of KB of image), and lines written by one program spell a shared
 * prefix the same way. Null when the body is too short to hold such a prefix.
 */
function promptStart(body: string): string | null {
  if (body.length < PREFIX_CHARS) return null;
  let at = -1;
  for (const field of PROMPT_FIELDS) {
    const i = body.indexOf(field);
    if (i >= 0 && (at < 0 || i < at)) at = i;
  }
  if (at < 0 || body.length - at < PREFIX_CHARS) return null;
  return body.slice(at, at + PREFIX_CHARS);
}

/**
 * The body with `prompt_cache_key` set to the line's prefix key, unless it has one: OpenAI
 * routes requests with the same key to the same cache. Spliced into the text (no re-encoding).
 */
export function withPromptCacheKey(body: string, key: string): string {
  if (body.includes('"prompt_cache_key"')) return body;
  const open = body.indexOf('{');
  if (open < 0) return body;
  const rest = body.slice(open + 1).trimStart();
  const sep = rest.startsWith('}') ? '' : ',';
  return `${body.slice(0, open + 1)}"prompt_cache_key":"ob-${key}"${sep}${rest}`;
}
