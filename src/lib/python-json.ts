/**
 * Serialises JSON with Python's `json.dumps` separators (`", "` and `": "`), which is how every
 * captured OpenAI output line is spaced. Strings and numbers use JSON.stringify's encoding.
 */
export function toPythonJson(value: unknown): string {
  const parts: string[] = [];
  write(value, parts);
  return parts.join('');
}

/**
 * Text that is already valid JSON (an upstream's answer, checked when it was recorded): written
 * re-spaced token by token, never parsed, so numbers keep their exact digits (a 20-digit integer
 * survives) and the finalizer skips a parse and a rebuild per line.
 */
export class RawJson {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
}

const QUOTE = 34;
const BACKSLASH = 92;
const COMMA = 44;
const COLON = 58;

/**
 * Re-spaces valid JSON text with Python's separators; strings and numbers are left untouched.
 * One pass over the character codes, copying runs between separators and dropping whitespace
 * outside strings (a regex with a callback per token cost about three times as much per answer).
 */
export function respaceJson(text: string): string {
  let out = '';
  let runStart = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
      continue;
    }
    if (c === QUOTE) inString = true;
    else if (c === COMMA || c === COLON) {
      out += text.slice(runStart, i) + (c === COMMA ? ', ' : ': ');
      runStart = i + 1;
    } else if (c === 32 || c === 10 || c === 13 || c === 9) {
      out += text.slice(runStart, i);
      runStart = i + 1;
    }
  }
  return runStart === 0 ? text : out + text.slice(runStart);
}

function write(value: unknown, out: string[]): void {
  if (value instanceof RawJson) {
    out.push(respaceJson(value.text));
    return;
  }
  if (value === null || typeof value !== 'object') {
    out.push(JSON.stringify(value) ?? 'null');
    return;
  }
  if (Array.isArray(value)) {
    out.push('[');
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out.push(', ');
      write(value[i], out);
    }
    out.push(']');
    return;
  }
  out.push('{');
  let first = true;
  for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
    if (item === undefined) continue;
    if (!first) out.push(', ');
    first = false;
    out.push(JSON.stringify(key), ': ');
    write(item, out);
  }
  out.push('}');
}
