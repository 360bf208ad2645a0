import { calcPrice, type TieredPrices } from '@pydantic/genai-prices';
import type { TokenUsage } from './token-usage.ts';

/**
 * The Batch API's discount: OpenAI bills batch lines at half the standard price for input,
 * cached input and output alike. The price data we use has no separate batch prices, so this
 * applies to every model unless an override gives `batchMultiplier`.
 */
export const BATCH_PRICE_MULTIPLIER = 0.5;

/** Dollars per million tokens for one model. */
export interface ModelPrice {
  inputPerMTok: number;
  cachedInputPerMTok: number;
  outputPerMTok: number;
  /** Batch price = standard × this. @default 0.5 */
  batchMultiplier: number;
  source: 'override' | 'genai-prices';
}

/** Prices by model name that win over the maintained data. */
export type PricingOverrides = Record<
  string,
  {
    inputPerMTok: number;
    cachedInputPerMTok?: number | undefined;
    outputPerMTok: number;
    batchMultiplier?: number | undefined;
  }
>;

/**
 * The price of `model`: an override when given, else the maintained genai-prices data (OpenAI
 * first, then any provider whose patterns match). Null when no price is known.
 */
export function priceForModel(model: string, overrides: PricingOverrides = {}): ModelPrice | null {
  const own = overrides[model];
  if (own) {
    return {
      inputPerMTok: own.inputPerMTok,
      cachedInputPerMTok: own.cachedInputPerMTok ?? own.inputPerMTok,
      outputPerMTok: own.outputPerMTok,
      batchMultiplier: own.batchMultiplier ?? BATCH_PRICE_MULTIPLIER,
      source: 'override',
    };
  }
  const unit = { input_tokens: 1, output_tokens: 1 };
  const found = calcPrice(unit, model, { providerId: 'openai' }) ?? calcPrice(unit, model);
  if (!found) return null;
  const p = found.model_price;
  const input = rate(p.input_mtok);
  return {
    inputPerMTok: input,
    cachedInputPerMTok: p.cache_read_mtok === undefined ? input : rate(p.cache_read_mtok),
    outputPerMTok: rate(p.output_mtok),
    batchMultiplier: BATCH_PRICE_MULTIPLIER,
    source: 'genai-prices',
  };
}

/** Tiered prices (long-context tiers) are priced at their base: batch lines are rarely that long. */
function rate(value: number | TieredPrices | undefined): number {
  if (value === undefined) return 0;
  return typeof value === 'number' ? value : value.base;
}

/** Dollars for each part of a usage at one price level. */
export interface CostParts {
  prompt: number;
  cached: number;
  completion: number;
  total: number;
}

/** Standard and batch cost of `usage` (cached tokens at the cached rate, the rest at input). */
export function costOf(
  usage: TokenUsage,
  price: ModelPrice,
): { standard: CostParts; batch: CostParts } {
  const standard = {
    prompt: ((usage.input_tokens - usage.cached_tokens) * price.inputPerMTok) / 1e6,
    cached: (usage.cached_tokens * price.cachedInputPerMTok) / 1e6,
    completion: (usage.output_tokens * price.outputPerMTok) / 1e6,
    total: 0,
  };
  standard.total = standard.prompt + standard.cached + standard.completion;
  const m = price.batchMultiplier;
  const batch = {
    prompt: standard.prompt * m,
    cached: standard.cached * m,
    completion: standard.completion * m,
    total: standard.total * m,
  };
  return { standard, batch };
}
