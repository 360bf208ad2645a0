/**
 * Bounds on what a client can make the server store and echo back: ids and model names are
 * checked by length and shape, and text quoted from a request is cut, so no answer grows with
 * the size of a hostile input.
 */

/** Longest id, model name or other name accepted from a client (OpenAI's ids are < 64). */
export const MAX_NAME_CHARS = 256;
/** Ids this server hands out and accepts: `file-…`, `batch_…` (letters, digits, `-`, `_`). */
const ID_SHAPE = /^[A-Za-z0-9_-]{1,256}$/;

export const isIdShaped = (id: string): boolean => ID_SHAPE.test(id);

/** Text quoted back to a client, cut to `maxChars` with an ellipsis saying it was cut. */
export function truncateEcho(text: string, maxChars = 128): string {
  if (text.length <= maxChars) return text;
  return `${text.slice(0, maxChars)}… (${text.length - maxChars} more characters)`;
}
