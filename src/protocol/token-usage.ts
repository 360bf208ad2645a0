/** Token counts as the Batch API reports them, summed over lines. */
export interface TokenUsage {
  input_tokens: number;
  /** Part of input_tokens served from the prompt cache. */
  cached_tokens: number;
  output_tokens: number;
  /** Part of output_tokens spent on reasoning. */
  reasoning_tokens: number;
  total_tokens: number;
}

/** All counts zero. */
export function emptyUsage(): TokenUsage {
  return {
    input_tokens: 0,
    cached_tokens: 0,
    output_tokens: 0,
    reasoning_tokens: 0,
    total_tokens: 0,
  };
}

const num = (value: unknown): number =>
  typeof value === 'number' && Number.isFinite(value) ? value : 0;

/**
 * Reads usage from any endpoint's response body: chat, completions and embeddings say
 * `prompt_tokens`/`completion_tokens`, responses say `input_tokens`/`output_tokens`.
 */
export function usageFromResponse(body: unknown): TokenUsage | null {
  if (body === null || typeof body !== 'object') return null;
  const usage = (body as { usage?: unknown }).usage;
  if (usage === null || typeof usage !== 'object') return null;
  const u = usage as Record<string, unknown>;
  const input = num(u.input_tokens) || num(u.prompt_tokens);
  const output = num(u.output_tokens) || num(u.completion_tokens);
  const inputDetails = (u.input_tokens_details ?? u.prompt_tokens_details) as
    Record<string, unknown> | null | undefined;
  const outputDetails = (u.output_tokens_details ?? u.completion_tokens_details) as
    Record<string, unknown> | null | undefined;
  return {
    input_tokens: input,
    cached_tokens: num(inputDetails?.cached_tokens),
    output_tokens: output,
    reasoning_tokens: num(outputDetails?.reasoning_tokens),
    total_tokens: num(u.total_tokens) || input + output,
  };
}

/** Adds `add` into `into` (mutates and returns `into`). */
export function addUsage(into: TokenUsage, add: TokenUsage): TokenUsage {
  into.input_tokens += add.input_tokens;
  into.cached_tokens += add.cached_tokens;
  into.output_tokens += add.output_tokens;
  into.reasoning_tokens += add.reasoning_tokens;
  into.total_tokens += add.total_tokens;
  return into;
}

/** The usage object of a Batch (the Batch API's own running totals). */
export function usageOfBatch(batch: {
  usage?: {
    input_tokens: number;
    input_tokens_details?: { cached_tokens?: number } | null;
    output_tokens: number;
    output_tokens_details?: { reasoning_tokens?: number } | null;
    total_tokens: number;
  } | null;
}): TokenUsage {
  const u = batch.usage;
  if (!u) return emptyUsage();
  return {
    input_tokens: num(u.input_tokens),
    cached_tokens: num(u.input_tokens_details?.cached_tokens),
    output_tokens: num(u.output_tokens),
    reasoning_tokens: num(u.output_tokens_details?.reasoning_tokens),
    total_tokens: num(u.total_tokens),
  };
}
