import { globToRegExp } from '../lib/glob.ts';
import {
  BATCH_PRICE_MULTIPLIER,
  costOf,
  priceForModel,
  type ModelPrice,
} from '../protocol/model-pricing.ts';
import type { TokenUsage } from '../protocol/token-usage.ts';
import type { LineCost } from './records.ts';

/** Where a line runs: the real-time API (`standard`) or a native batch API (`batch`). */
export type PriceTier = 'standard' | 'batch';

/** One configured price: USD per 1M tokens (the config file's `pricing` entries). */
export interface PriceEntry {
  input: number;
  output: number;
  /** @default input */
  cachedInput?: number | undefined;
  /** Batch price = this × standard. @default 0.5 */
  batchMultiplier?: number | undefined;
}

/** An upstream's prices: its table (model or glob → price), and whether public prices fill gaps. */
export interface UpstreamPricing {
  table: Readonly<Record<string, PriceEntry>>;
  /** Known providers' hosts (OpenAI, Azure…) use @pydantic/genai-prices; self-hosted ones cost 0. */
  publicPrices: boolean;
}

/** Hosts whose models are priced from the public price data unless the config says otherwise. */
const PUBLIC_HOSTS = [
  /(^|\.)openai\.com$/,
  /\.openai\.azure\.com$/,
  /\.cognitiveservices\.azure\.com$/,
  /(^|\.)anthropic\.com$/,
  /(^|\.)googleapis\.com$/,
  /(^|\.)groq\.com$/,
  /(^|\.)mistral\.ai$/,
  /(^|\.)together\.(xyz|ai)$/,
  /(^|\.)fireworks\.ai$/,
  /(^|\.)deepseek\.com$/,
  /(^|\.)openrouter\.ai$/,
  /(^|\.)x\.ai$/,
];

/** True when `baseUrl` is a known provider's (its models have public prices). */
export function hasPublicPrices(baseUrl: string): boolean {
  const host = URL.canParse(baseUrl) ? new URL(baseUrl).hostname : '';
  return PUBLIC_HOSTS.some((re) => re.test(host));
}

const NANO_PER_USD = 1e9;
const FREE: ModelPrice = {
  inputPerMTok: 0,
  cachedInputPerMTok: 0,
  outputPerMTok: 0,
  batchMultiplier: BATCH_PRICE_MULTIPLIER,
  source: 'override',
};

/**
 * Prices per (upstream, model), resolved once per pair: the upstream's table (exact name, then
 * the first matching glob), then public prices for known hosts, else free. Money leaves here as
 * integer nano-dollars so sums over millions of lines stay exact.
 */
export class PriceBook {
  readonly #upstreams: ReadonlyMap<string, UpstreamPricing>;
  readonly #resolved = new Map<string, ModelPrice>();

  constructor(upstreams: ReadonlyMap<string, UpstreamPricing>) {
    this.#upstreams = upstreams;
  }

  /** The price of `model` on `upstream` (an unknown model of a public host: free, logged by none). */
  priceFor(upstream: string, model: string): ModelPrice {
    const key = `${upstream}\u0000${model}`;
    let price = this.#resolved.get(key);
    if (!price) {
      price = this.#resolve(upstream, model);
      if (this.#resolved.size > 4_096) this.#resolved.clear(); // model names come from clients
      this.#resolved.set(key, price);
    }
    return price;
  }

  /** What `usage` costs on `upstream` at `tier`, and at the standard price. */
  lineCost(upstream: string, model: string, usage: TokenUsage, tier: PriceTier): LineCost {
    const { standard, batch } = costOf(usage, this.priceFor(upstream, model));
    const charged = tier === 'batch' ? batch.total : standard.total;
    return {
      charged_nano: Math.round(charged * NANO_PER_USD),
      standard_nano: Math.round(standard.total * NANO_PER_USD),
    };
  }

  /** Upper bound of a line's cost before it runs: its prompt and its whole output bound. */
  boundNano(
    upstream: string,
    model: string,
    tokens: { input: number; maxOutput: number },
    tier: PriceTier,
  ): number {
    const usage = {
      input_tokens: tokens.input,
      cached_tokens: 0,
      output_tokens: tokens.maxOutput,
      reasoning_tokens: 0,
      total_tokens: tokens.input + tokens.maxOutput,
    };
    return this.lineCost(upstream, model, usage, tier).charged_nano;
  }

  #resolve(upstream: string, model: string): ModelPrice {
    const pricing = this.#upstreams.get(upstream);
    const entry = pricing ? configured(pricing.table, model) : undefined;
    if (entry)
      return {
        inputPerMTok: entry.input,
        cachedInputPerMTok: entry.cachedInput ?? entry.input,
        outputPerMTok: entry.output,
        batchMultiplier: entry.batchMultiplier ?? BATCH_PRICE_MULTIPLIER,
        source: 'override',
      };
    if (pricing?.publicPrices) return priceForModel(model) ?? FREE;
    return FREE;
  }
}

function configured(
  table: Readonly<Record<string, PriceEntry>>,
  model: string,
): PriceEntry | undefined {
  if (table[model]) return table[model];
  for (const [glob, entry] of Object.entries(table))
    if (glob.includes('*') || glob.includes('?')) if (globToRegExp(glob).test(model)) return entry;
  return undefined;
}

/** Nano-dollars as USD (for the wire and logs). */
export function nanoToUsd(nano: number): number {
  return Math.round(nano) / NANO_PER_USD;
}
