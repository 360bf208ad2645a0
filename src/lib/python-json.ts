/**
 * Serialises JSON with Python's `json.dumps` separators (`", "` and `": "`), which is how every
 * captured OpenAI output line is spaced. Strings and numbers use JSON.stringify's encoding.
 */
export function toPythonJson(value: unknown): string {
  const parts: string[] = [];
  write(value, parts);
  return parts.join('');
}

function write(value: unknown, out: string[]): void {
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
