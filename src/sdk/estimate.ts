import type { BatchEndpoint } from '../protocol/endpoints.ts';
import { isKnownModel, tokenizerFor, type EncodingName } from '../protocol/model-tokenizer.ts';
import { countRequestTokens, DEFAULT_ASSUMED_MAX_TOKENS } from '../protocol/request-tokens.ts';
import { emptyUsage } from '../protocol/token-usage.ts';
import type { LineSource } from './line-source.ts';
import { costOf, priceForModel, type PricingOverrides } from './pricing.ts';
import { checkLine, duplicateIssue, type LineIssue } from './validate-lines.ts';

export { DEFAULT_ASSUMED_MAX_TOKENS };

/** Options of `estimateBatch`. */
export interface EstimateOptions {
  /** Every line must target this endpoint (otherwise each line's `url`). */
  endpoint?: BatchEndpoint | undefined;
  /** Output bound for lines without one. @default 1_024 */
  defaultMaxTokens?: number | undefined;
  pricing?: PricingOverrides | undefined;
  /** Upstream limits for the turnaround estimate (requests / tokens per minute). */
  rpm?: number | undefined;
  tpm?: number | undefined;
  /** @default 1_048_576 */
  maxLineBytes?: number | undefined;
}

/** Dollars for the input and the (bounded) output. */
export interface EstimateCost {
  input: number;
  output: number;
  total: number;
}

/** Tokens and cost of one model's lines. */
export interface ModelEstimate {
  model: string;
  encoding: EncodingName;
  lines: number;
  input_tokens: number;
  /** Upper bound: the sum of every line's output limit. */
  max_output_tokens: number;
  /** Lines with no output limit, counted at `defaultMaxTokens`. */
  lines_assumed_max_output: number;
  /** Lines whose input count includes estimates (images, tools, unknown model tokenizer). */
  approximate_lines: number;
  standard: EstimateCost | null;
  batch: EstimateCost | null;
}

/** How long the batch needs at the given limits (null without limits). */
export interface Turnaround {
  rpm: number | null;
  tpm: number | null;
  seconds: number | null;
  bound: 'rpm' | 'tpm' | null;
}

/** Everything `openbatch estimate` prints. No network is used to build it. */
export interface EstimateReport {
  source: string;
  lines: number;
  valid: number;
  invalid_count: number;
  /** First 1,000 invalid lines, by line number. */
  invalid: LineIssue[];
  models: ModelEstimate[];
  total: {
    input_tokens: number;
    max_output_tokens: number;
    standard_usd: number | null;
    batch_usd: number | null;
    savings_usd: number | null;
  };
  unpriced: string[];
  default_max_tokens: number;
  turnaround: Turnaround;
}

/** Validates and counts every line of `source`, prices it and estimates the turnaround. */
export async function estimateBatch(
  source: LineSource,
  options: EstimateOptions = {},
): Promise<EstimateReport> {
  const defaultMaxTokens = options.defaultMaxTokens ?? DEFAULT_ASSUMED_MAX_TOKENS;
  const models = new Map<string, ModelEstimate>();
  const invalid: LineIssue[] = [];
  const seen = new Set<string>();
  let lines = 0;
  let invalidCount = 0;
  const report = (issue: LineIssue): void => {
    invalidCount += 1;
    if (invalid.length < 1_000) invalid.push(issue);
  };
  for await (const { lineNo, text } of source.lines(options.maxLineBytes ?? 1_048_576)) {
    if (text !== null && text.trim() === '') continue;
    lines += 1;
    const check = checkLine(text, lineNo, options);
    if (!check.ok) report(check.issue);
    else if (seen.has(check.line.custom_id)) report(duplicateIssue(lineNo));
    else {
      seen.add(check.line.custom_id);
      addLine(models, check.line, defaultMaxTokens);
    }
  }
  const priced = [...models.values()].map((m) => priceModel(m, options.pricing));
  return {
    source: source.name,
    lines,
    valid: lines - invalidCount,
    invalid_count: invalidCount,
    invalid,
    models: priced,
    total: totals(priced),
    unpriced: priced.filter((m) => m.standard === null).map((m) => m.model),
    default_max_tokens: defaultMaxTokens,
    turnaround: turnaround(priced, options.rpm ?? null, options.tpm ?? null),
  };
}

function addLine(
  models: Map<string, ModelEstimate>,
  line: { model: string; endpoint: string; bodyJson: string },
  defaultMaxTokens: number,
): void {
  const tk = tokenizerFor(line.model);
  let m = models.get(line.model);
  if (!m) {
    m = {
      model: line.model,
      encoding: tk.encoding,
      lines: 0,
      input_tokens: 0,
      max_output_tokens: 0,
      lines_assumed_max_output: 0,
      approximate_lines: 0,
      standard: null,
      batch: null,
    };
    models.set(line.model, m);
  }
  const body = JSON.parse(line.bodyJson) as Record<string, unknown>;
  const t = countRequestTokens(body, tk, { endpoint: line.endpoint, defaultMaxTokens });
  m.lines += 1;
  m.input_tokens += t.input;
  m.max_output_tokens += t.maxOutput;
  if (t.assumedMaxOutput) m.lines_assumed_max_output += 1;
  if (!t.exact || !isKnownModel(line.model)) m.approximate_lines += 1;
}

function priceModel(m: ModelEstimate, overrides: PricingOverrides | undefined): ModelEstimate {
  const price = priceForModel(m.model, overrides);
  if (!price) return m;
  const usage = {
    ...emptyUsage(),
    input_tokens: m.input_tokens,
    output_tokens: m.max_output_tokens,
  };
  const { standard, batch } = costOf(usage, price);
  const parts = (c: typeof standard): EstimateCost => ({
    input: c.prompt + c.cached,
    output: c.completion,
    total: c.total,
  });
  return { ...m, standard: parts(standard), batch: parts(batch) };
}

function totals(models: ModelEstimate[]): EstimateReport['total'] {
  const priced = models.filter((m) => m.standard !== null);
  const sum = (f: (m: ModelEstimate) => number): number => models.reduce((n, m) => n + f(m), 0);
  const standard = priced.length ? sum((m) => m.standard?.total ?? 0) : null;
  const batch = priced.length ? sum((m) => m.batch?.total ?? 0) : null;
  return {
    input_tokens: sum((m) => m.input_tokens),
    max_output_tokens: sum((m) => m.max_output_tokens),
    standard_usd: standard,
    batch_usd: batch,
    savings_usd: standard === null || batch === null ? null : standard - batch,
  };
}

/**
 * Time to push every line through limits shaped like OpenAI's: whichever of requests/minute and
 * tokens/minute (prompt + output bound, what the limiter reserves) runs out first sets the pace.
 */
function turnaround(models: ModelEstimate[], rpm: number | null, tpm: number | null): Turnaround {
  const requests = models.reduce((n, m) => n + m.lines, 0);
  const tokens = models.reduce((n, m) => n + m.input_tokens + m.max_output_tokens, 0);
  const byRpm = rpm ? (requests / rpm) * 60 : null;
  const byTpm = tpm ? (tokens / tpm) * 60 : null;
  if (byRpm === null && byTpm === null) return { rpm, tpm, seconds: null, bound: null };
  const bound = (byTpm ?? -1) > (byRpm ?? -1) ? 'tpm' : 'rpm';
  return { rpm, tpm, seconds: Math.ceil(Math.max(byRpm ?? 0, byTpm ?? 0)), bound };
}
