/**
 * Formats a duration the way OpenAI's x-ratelimit-reset-* headers and 429 messages do:
 * `120ms`, `1s`, `17.28s`, `6m0s`, `1m30.5s`, `1h2m3s`.
 */
export function formatDuration(ms: number): string {
  const wholeMs = Math.max(0, Math.ceil(ms));
  if (wholeMs === 0) return '0s';
  if (wholeMs < 1000) return `${wholeMs}ms`;
  const hours = Math.floor(wholeMs / 3_600_000);
  const minutes = Math.floor((wholeMs % 3_600_000) / 60_000);
  const seconds = trimDecimals((wholeMs % 60_000) / 1000);
  if (hours > 0) return `${hours}h${minutes}m${seconds}s`;
  if (minutes > 0) return `${minutes}m${seconds}s`;
  return `${seconds}s`;
}

function trimDecimals(value: number): string {
  // toFixed(3) then strip zeros: 30.500 → 30.5, 1.000 → 1
  return value.toFixed(3).replace(/\.?0+$/, '');
}
