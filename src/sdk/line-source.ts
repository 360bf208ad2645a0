import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readJsonlLines, type JsonlLine } from '../lib/jsonl-lines.ts';

/** Where a job's input lines come from; read again (not kept) when a retry needs them. */
export interface LineSource {
  /** For messages: the file path, or "requests" for in-memory input. */
  readonly name: string;
  /** Every physical line, 1-based; `text` is null for a line longer than `maxLineBytes`. */
  lines(maxLineBytes: number): AsyncIterable<JsonlLine>;
}

/** Lines of a JSONL file, streamed (memory bounded by the longest line). */
export function fileLineSource(path: string): LineSource {
  return {
    name: path,
    lines: (maxLineBytes) => readJsonlLines(createReadStream(path), maxLineBytes),
  };
}

/** Lines held in memory (one JSON text each, no newlines inside). */
export function arrayLineSource(texts: readonly string[]): LineSource {
  return {
    name: 'requests',
    lines: async function* (maxLineBytes) {
      let lineNo = 0;
      let start = 0;
      for (const text of texts) {
        lineNo += 1;
        const bytes = Buffer.byteLength(text);
        yield { lineNo, text: bytes > maxLineBytes ? null : text, bytes, start };
        start += bytes + 1;
      }
    },
  };
}

/** sha256 (hex) of a file's bytes, streamed. */
export async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
