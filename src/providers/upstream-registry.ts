import { globToRegExp } from '../lib/glob.ts';
import type { Upstream, UpstreamRegistry } from './provider.ts';

/** An upstream and the models it serves (exact names or globs; `*` serves everything). */
export interface RoutedUpstream {
  upstream: Upstream;
  models: readonly string[];
}

/**
 * Routes a model to the first upstream whose patterns match, exact names winning over globs
 * so `gpt-4o` can go to one upstream while `gpt-*` goes to another.
 */
export function createUpstreamRegistry(routes: readonly RoutedUpstream[]): UpstreamRegistry {
  const exact = new Map<string, Upstream>();
  const globs: { pattern: RegExp; upstream: Upstream }[] = [];
  for (const { upstream, models } of routes) {
    for (const model of models) {
      if (/[*?]/.test(model)) globs.push({ pattern: globToRegExp(model), upstream });
      else if (!exact.has(model)) exact.set(model, upstream);
    }
  }
  const cache = new Map<string, Upstream | null>();
  return {
    resolve: (model) => {
      if (cache.has(model)) return cache.get(model) ?? null;
      const found = exact.get(model) ?? globs.find((g) => g.pattern.test(model))?.upstream ?? null;
      if (cache.size < 10_000) cache.set(model, found);
      return found;
    },
    all: () => routes.map((r) => r.upstream),
    close: async () => {
      await Promise.all(routes.map((r) => r.upstream.close()));
    },
  };
}
