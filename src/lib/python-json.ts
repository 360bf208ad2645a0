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

// A string token (kept as is), a run of whitespace outside strings (dropped), or a separator.
const TOKEN = /"(?:[^"\\]|\\.)*"|\s+|[:,]/g;

/** Re-spaces valid JSON text with Python's separators; strings and numbers are left untouched. */
export function respaceJson(text: string): string {
  return text.replace(TOKEN, (token) => {
    if (token === ':') return ': ';
    if (token === ',') return ', ';
    return token.charCodeAt(0) === 34 ? token : '';
  });
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
