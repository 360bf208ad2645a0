import { PriceBook } from '../domain/price-book.ts';
import { CostControl } from './cost-control.ts';
import type { DispatchControls } from './dispatcher.ts';
import type { EngineDeps } from './engine-deps.ts';
import { ResponseCache } from './response-cache.ts';
import { PrefixOrder } from './prefix-order.ts';

/** The engine's cost controls from its deps (no `costs`: free lines, no cache). */
export function createControls(deps: EngineDeps): DispatchControls {
  const nowMs = (): number => deps.clock.nowMs();
  const settings = deps.costs?.settings ?? {
    prices: new PriceBook(new Map()),
    projectMaxCostUsd: new Map(),
  };
  const defaultMaxTokens = new Map(
    [...deps.options.scheduling].map(([name, s]) => [name, s.defaultMaxTokens]),
  );
  return {
    costs: new CostControl(deps.store, { defaultMaxTokens, ...settings }, deps.logger, nowMs),
    prefixOrder: deps.costs?.prefixOrder === false ? null : new PrefixOrder(),
    promptCacheKeys: deps.costs?.promptCacheKeys ?? new Set(),
    cache: new ResponseCache(deps.store, deps.costs?.cache ?? new Map(), {
      shared: deps.costs?.cacheShared ?? false,
      logger: deps.logger,
      nowMs,
    }),
  };
}
