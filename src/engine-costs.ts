import type { Config } from './config/config.ts';
import { hasPublicPrices, PriceBook } from './domain/price-book.ts';
import type { EngineCostDeps } from './engine/engine-deps.ts';
import { DEFAULT_CACHE, type CacheSettings } from './engine/response-cache.ts';

/**
 * The engine's cost controls from the config (part of the composition root): each upstream's
 * price table (public prices behind it on known hosts), the projects' caps, and which upstreams
 * cache answers (OPENBATCH_CACHE=on for all, or an upstream's own `cache`).
 */
export function engineCosts(config: Pick<Config, 'upstreams' | 'costs'>): EngineCostDeps {
  const prices = new PriceBook(
    new Map(
      config.upstreams.map((u) => [
        u.name,
        { table: u.pricing ?? {}, publicPrices: hasPublicPrices(u.baseUrl) },
      ]),
    ),
  );
  const cache = new Map<string, CacheSettings>();
  for (const u of config.upstreams) {
    const own = u.cache;
    if (!(own?.enabled ?? (own !== undefined || config.costs.cacheOn))) continue;
    cache.set(u.name, {
      ttlMs: own?.ttlSeconds !== undefined ? own.ttlSeconds * 1000 : DEFAULT_CACHE.ttlMs,
      maxEntries: own?.maxEntries ?? DEFAULT_CACHE.maxEntries,
      requests: own?.requests ?? DEFAULT_CACHE.requests,
    });
  }
  return {
    settings: { prices, projectMaxCostUsd: config.costs.projectMaxCostUsd },
    cache,
    cacheShared: config.costs.cacheShared,
    prefixOrder: config.costs.prefixOrder,
    promptCacheKeys: new Set(
      config.upstreams.filter((u) => usesPromptCacheKey(u.baseUrl)).map((u) => u.name),
    ),
  };
}

/** OpenAI and Azure OpenAI route by `prompt_cache_key`; other upstreams may refuse the field. */
function usesPromptCacheKey(baseUrl: string): boolean {
  const host = URL.canParse(baseUrl) ? new URL(baseUrl).hostname : '';
  return host === 'api.openai.com' || host.endsWith('.openai.azure.com');
}
