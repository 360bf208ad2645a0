/** Batch input files, written line by line so a 1,000,000-line file never exists as one string. */
import { randomBytes } from 'node:crypto';
import { createWriteStream, statSync } from 'node:fs';
import { once } from 'node:events';

/** One request line of a batch input file. */
export interface RequestLine {
  custom_id: string;
  method: 'POST';
  url: string;
  body: object;
}

// Lines are joined into chunks of about this size: one write per short line costs more than the
// rest of the loop, and a fixed count of 600 KB vision lines would make one huge string.
const CHUNK_CHARS = 1 << 20;

/** Writes `count` lines made by `lineAt` to `path`; returns the file's size in bytes. */
export async function writeJsonl(
  path: string,
  count: number,
  lineAt: (i: number) => RequestLine,
): Promise<number> {
  const out = createWriteStream(path);
  let chunk = '';
  for (let i = 0; i < count; i++) {
    chunk += JSON.stringify(lineAt(i)) + '\n';
    if (chunk.length < CHUNK_CHARS && i < count - 1) continue;
    if (!out.write(chunk)) await once(out, 'drain');
    chunk = '';
  }
  out.end();
  await once(out, 'finish');
  return statSync(path).size;
}

export const CHAT_URL = '/v1/chat/completions';

/** The chat request body of the overhead benchmark (and of the bare loop it is compared with). */
export const chatBody = (i: number, tag = '') => ({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: `${tag}Summarise document ${i} in one line.` }],
  max_tokens: 32,
});

/** A short chat line; `tag` is prepended to the prompt (a simulator marker, say). */
export const chatLine = (i: number, tag = ''): RequestLine => ({
  custom_id: `r-${i}`,
  method: 'POST',
  url: CHAT_URL,
  body: chatBody(i, tag),
});

/**
 * A chat line asking about one inline image: a base64 data URL of `imageBytes` characters, random
 * per line so nothing downstream can share or compress them.
 */
export function visionLine(i: number, imageBytes: number): RequestLine {
  const base64 = randomBytes(Math.ceil((imageBytes * 3) / 4)).toString('base64');
  return {
    custom_id: `img-${i}`,
    method: 'POST',
    url: CHAT_URL,
    body: {
      model: 'gpt-4o-mini',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: `Describe image ${i} in one line.` },
            { type: 'image_url', image_url: { url: `data:image/jpeg;base64,${base64}` } },
          ],
        },
      ],
      max_tokens: 32,
    },
  };
}
