import type { UsageTotals } from './records.ts';

const num = (value: unknown): number =>
  typeof value === 'number' && Number.isFinite(value) ? value : 0;

/**
 * Reads token usage from any endpoint's response body: chat/completions/embeddings use
 * `prompt_tokens`/`completion_tokens`, responses use `input_tokens`/`output_tokens`.
 */
export function usageFromResponse(body: unknown): UsageTotals | null {
  if (body === null || typeof body !== 'object') return null;
  const usage = (body as { usage?: unknown }).usage;
  if (usage === null || typeof usage !== 'object') return null;
  const u = usage as Record<string, Record<string, unknown> | number | undefined>;
  const input = num(u.input_tokens) || num(u.prompt_tokens);
  const output = num(u.output_tokens) || num(u.completion_tokens);
  const inputDetails = (u.input_tokens_details ?? u.prompt_tokens_details) as
    Record<string, unknown> | undefined;
  const outputDetails = (u.output_tokens_details ?? u.completion_tokens_details) as
    Record<string, unknown> | undefined;
  return {
    input_tokens: input,
    cached_tokens: num(inputDetails?.cached_tokens),
    output_tokens: output,
    reasoning_tokens: num(outputDetails?.reasoning_tokens),
    total_tokens: num(u.total_tokens) || input + output,
  };
}

export function addUsage(into: UsageTotals, add: UsageTotals): void {
  into.input_tokens += add.input_tokens;
  into.cached_tokens += add.cached_tokens;
  into.output_tokens += add.output_tokens;
  into.reasoning_tokens += add.reasoning_tokens;
  into.total_tokens += add.total_tokens;
}
