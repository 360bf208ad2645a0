import {
  costOf,
  priceForModel,
  type CostParts,
  type ModelPrice,
  type PricingOverrides,
} from './pricing.ts';
import { addUsage, emptyUsage, type TokenUsage } from '../protocol/token-usage.ts';

/** One row of the usage table; dollars are null when no model of the job has a known price. */
export interface UsageTableRow {
  category: 'Prompt' | 'Cached prompt' | 'Completion' | '  reasoning' | 'Total';
  tokens: number;
  standardUsd: number | null;
  batchUsd: number | null;
}

/** Usage and cost of one model. */
export interface ModelUsage {
  model: string;
  usage: TokenUsage;
  price: ModelPrice | null;
  standardUsd: number | null;
  batchUsd: number | null;
}

/** Tokens and dollars at standard and batch prices, as data (`formatUsageTable` prints it). */
export interface UsageTable {
  rows: UsageTableRow[];
  usage: TokenUsage;
  models: ModelUsage[];
  standardUsd: number;
  batchUsd: number;
  savingsUsd: number;
  /** Models whose tokens are counted but not priced (no price data, no override). */
  unpriced: string[];
}

/** Builds the table from usage per model (prices: overrides, else genai-prices data). */
export function buildUsageTable(
  usageByModel: ReadonlyMap<string, TokenUsage>,
  overrides: PricingOverrides = {},
): UsageTable {
  const { usage, models, cost } = priceModels(usageByModel, overrides);
  const row = (
    category: UsageTableRow['category'],
    tokens: number,
    key: keyof CostParts | null,
  ): UsageTableRow => ({
    category,
    tokens,
    standardUsd: cost && key ? cost.standard[key] : null,
    batchUsd: cost && key ? cost.batch[key] : null,
  });
  const standardUsd = cost?.standard.total ?? 0;
  const batchUsd = cost?.batch.total ?? 0;
  return {
    rows: [
      row('Prompt', usage.input_tokens - usage.cached_tokens, 'prompt'),
      row('Cached prompt', usage.cached_tokens, 'cached'),
      row('Completion', usage.output_tokens, 'completion'),
      row('  reasoning', usage.reasoning_tokens, null),
      row('Total', usage.total_tokens, 'total'),
    ],
    usage,
    models,
    standardUsd,
    batchUsd,
    savingsUsd: standardUsd - batchUsd,
    unpriced: models.filter((m) => m.price === null).map((m) => m.model),
  };
}

/** Prices each model and sums the costs of those with a price (null when none has one). */
function priceModels(usageByModel: ReadonlyMap<string, TokenUsage>, overrides: PricingOverrides) {
  const usage = emptyUsage();
  const models: ModelUsage[] = [];
  let cost: { standard: CostParts; batch: CostParts } | null = null;
  for (const [model, u] of [...usageByModel].sort(([a], [b]) => a.localeCompare(b))) {
    addUsage(usage, u);
    const price = priceForModel(model, overrides);
    const c = price ? costOf(u, price) : null;
    models.push({
      model,
      usage: u,
      price,
      standardUsd: c?.standard.total ?? null,
      batchUsd: c?.batch.total ?? null,
    });
    if (c)
      cost = cost
        ? { standard: add(cost.standard, c.standard), batch: add(cost.batch, c.batch) }
        : c;
  }
  return { usage, models, cost };
}

function add(a: CostParts, b: CostParts): CostParts {
  return {
    prompt: a.prompt + b.prompt,
    cached: a.cached + b.cached,
    completion: a.completion + b.completion,
    total: a.total + b.total,
  };
}

/** The table as text, in the style of OpenaiBatchAPI's `print_usage_table`. */
export function formatUsageTable(table: UsageTable, options: { digits?: number } = {}): string {
  const digits = options.digits ?? 8;
  const money = (v: number | null, category: string): string =>
    category === '  reasoning' ? 'incl.' : v === null ? 'n/a' : `$${v.toFixed(digits)}`;
  const cells = table.rows.map((r) => [
    r.category,
    r.tokens.toLocaleString('en-US'),
    money(r.standardUsd, r.category),
    money(r.batchUsd, r.category),
  ]);
  const header = ['Category', 'Tokens', 'Standard price', 'Batch price'];
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? '').length)));
  const line = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+`;
  const fmt = (c: string[]): string =>
    `| ${c.map((v, i) => (i === 0 ? v.padEnd(widths[i] ?? 0) : v.padStart(widths[i] ?? 0))).join(' | ')} |`;
  const body = cells.slice(0, -1).map(fmt);
  const total = cells.at(-1) ?? [];
  const out = [line, fmt(header), line, ...body, line, fmt(total), line];
  out.push(...footer(table, digits));
  return `${out.join('\n')}\n`;
}

function footer(table: UsageTable, digits: number): string[] {
  const lines: string[] = [];
  const names = table.models.map((m) => m.model).join(', ');
  if (names) lines.push(`Models: ${names}`);
  if (table.standardUsd > 0) {
    const pct = Math.round((table.savingsUsd / table.standardUsd) * 100);
    lines.push(
      `Batch saves $${table.savingsUsd.toFixed(digits)} (${pct}%) against standard prices.`,
    );
  }
  if (table.unpriced.length > 0)
    lines.push(
      `No price known for ${table.unpriced.join(', ')}: pass --pricing FILE to price them.`,
    );
  return lines;
}
