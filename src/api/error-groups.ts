import type { Readable } from 'node:stream';
import { readJsonlLines } from '../lib/jsonl-lines.ts';

/** One error code of a batch: how many lines, and a few of them to look at. */
export interface ErrorGroup {
  code: string;
  count: number;
  samples: { custom_id: string | null; status_code: number | null; message: string }[];
}

const SAMPLES_PER_CODE = 3;
const MESSAGE_CHARS = 300;
/** Lines read at most: the page answers in bounded time and memory on any error file. */
const MAX_LINES = 200_000;

interface ErrorLine {
  custom_id?: string;
  response?: {
    status_code?: number;
    body?: { error?: { code?: unknown; message?: unknown } };
  } | null;
  error?: { code?: unknown; message?: unknown } | null;
}

/** The code a line is grouped under: our error's, the upstream's error body's, or its status. */
function classify(line: ErrorLine): { code: string; message: string; status: number | null } {
  const status = line.response?.status_code ?? null;
  const err = line.error ?? line.response?.body?.error ?? null;
  const code =
    typeof err?.code === 'string' && err.code !== ''
      ? err.code
      : status !== null
        ? `http_${status}`
        : 'unknown';
  const message = typeof err?.message === 'string' ? err.message : '';
  return { code, message: message.slice(0, MESSAGE_CHARS), status };
}

/**
 * Groups a batch's error file by code, streaming it: counts per code and the first few lines of
 * each. Returns whether the file was read to its end (false past MAX_LINES).
 */
export async function groupErrorLines(
  input: Readable,
  maxLineBytes: number,
): Promise<{ groups: ErrorGroup[]; complete: boolean }> {
  const groups = new Map<string, ErrorGroup>();
  let lines = 0;
  for await (const line of readJsonlLines(input, maxLineBytes)) {
    if (++lines > MAX_LINES) {
      input.destroy();
      return { groups: sorted(groups), complete: false };
    }
    if (line.text === null || line.text.trim() === '') continue;
    let parsed: ErrorLine;
    try {
      parsed = JSON.parse(line.text) as ErrorLine;
    } catch {
      continue;
    }
    const { code, message, status } = classify(parsed);
    let group = groups.get(code);
    if (!group) groups.set(code, (group = { code, count: 0, samples: [] }));
    group.count++;
    if (group.samples.length < SAMPLES_PER_CODE)
      group.samples.push({ custom_id: parsed.custom_id ?? null, status_code: status, message });
  }
  return { groups: sorted(groups), complete: true };
}

const sorted = (groups: Map<string, ErrorGroup>): ErrorGroup[] =>
  [...groups.values()].sort((a, b) => b.count - a.count);
