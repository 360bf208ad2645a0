/**
 * Maximum nesting depth of a JSON text, counted without parsing it, so a hostile line nested
 * 10,000 deep is refused before anything recursive touches it. Brackets inside strings are skipped.
 */
export function jsonNestingDepth(text: string): number {
  let depth = 0;
  let maxDepth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 92 /* \ */) i++;
      else if (ch === 34 /* " */) inString = false;
    } else if (ch === 34) inString = true;
    else if (ch === 123 /* { */ || ch === 91 /* [ */) {
      depth++;
      if (depth > maxDepth) maxDepth = depth;
    } else if (ch === 125 /* } */ || ch === 93 /* ] */) depth--;
  }
  return maxDepth;
}
