import { createHash } from 'node:crypto';
import type { ClaimedItem } from '../domain/records.ts';
import type { Logger } from '../lib/logger.ts';
import type { UpstreamResponse } from '../providers/provider.ts';
import type { Store } from '../store/store.ts';

/** The response cache of one upstream. */
export interface CacheSettings {
  ttlMs: number;
  maxEntries: number;
  /** `deterministic`: embeddings, `temperature` 0 or a `seed`; `all`: every request. */
  requests: 'deterministic' | 'all';
}

export const DEFAULT_CACHE: CacheSettings = {
  ttlMs: 7 * 24 * 3600_000,
  maxEntries: 100_000,
  requests: 'deterministic',
};
/** Stores between two prunes of the table (expired and oldest-past-the-bound entries). */
const PRUNE_EVERY = 200;

/** How a line got its answer. */
export interface CachedCall {
  res: UpstreamResponse;
  cached: boolean;
}

/**
 * Answers identical requests once: key = hash(upstream, endpoint, canonical body), scoped by
 * project unless the operator shares the cache. Identical lines in flight at once share one
 * call (single-flight); 2xx answers are stored (both stores, bounded by entries and TTL) so a
 * later batch, or the same one after a restart, pays nothing for them.
 */
export class ResponseCache {
  readonly #store: Store;
  readonly #settings: ReadonlyMap<string, CacheSettings>;
  readonly #shared: boolean;
  readonly #logger: Logger;
  readonly #nowMs: () => number;
  readonly #inFlight = new Map<string, Promise<CachedCall>>();
  #storesSincePrune = 0;
  hits = 0;

  constructor(
    store: Store,
    settings: ReadonlyMap<string, CacheSettings>,
    opts: { shared: boolean; logger: Logger; nowMs: () => number },
  ) {
    this.#store = store;
    this.#settings = settings;
    this.#shared = opts.shared;
    this.#logger = opts.logger;
    this.#nowMs = opts.nowMs;
  }

  /** Whether any upstream caches (the dispatcher skips all of this otherwise). */
  get enabled(): boolean {
    return this.#settings.size > 0;
  }

  /** The line's answer from the cache, a call in flight for the same request, or `send`. */
  async call(
    item: ClaimedItem,
    upstream: string,
    project: string,
    send: () => Promise<UpstreamResponse>,
  ): Promise<CachedCall> {
    const settings = this.#settings.get(upstream);
    const key = settings ? cacheKey(item, upstream, settings) : null;
    if (!settings || key === null) return { res: await send(), cached: false };
    const scope = this.#shared ? '*' : project;
    const slot = `${scope}\u0000${key}`;
    const pending = this.#inFlight.get(slot);
    if (pending) {
      const first = await pending.catch(() => null);
      if (first && first.res.failure === null) return this.#hit(first.res);
      return { res: await send(), cached: false };
    }
    // Registered before the lookup: a twin arriving meanwhile waits for this one.
    const work = this.#lookupOrSend(scope, key, settings, send);
    this.#inFlight.set(slot, work);
    try {
      const result = await work;
      return result.cached ? this.#hit(result.res) : result;
    } finally {
      this.#inFlight.delete(slot);
    }
  }

  async #lookupOrSend(
    scope: string,
    key: string,
    settings: CacheSettings,
    send: () => Promise<UpstreamResponse>,
  ): Promise<CachedCall> {
    const stored = await this.#store.cachedResponse(scope, key, this.#nowMs());
    if (stored)
      return { res: { ...FROM_CACHE, status: stored.status, body: stored.body }, cached: true };
    const res = await send();
    if (res.failure === null) await this.#keep(scope, key, res, settings);
    return { res, cached: false };
  }

  #hit(res: UpstreamResponse): CachedCall {
    this.hits++;
    return { res: { ...res, requestId: null }, cached: true };
  }

  async #keep(
    scope: string,
    key: string,
    res: UpstreamResponse,
    settings: CacheSettings,
  ): Promise<void> {
    const now = this.#nowMs();
    try {
      await this.#store.putCachedResponse({
        scope,
        key,
        status: res.status,
        body: res.body,
        created_at_ms: now,
        expires_at_ms: now + settings.ttlMs,
      });
      if (++this.#storesSincePrune >= PRUNE_EVERY) {
        this.#storesSincePrune = 0;
        await this.#store.pruneResponseCache(now, settings.maxEntries);
      }
    } catch (err) {
      // The answer itself is fine: only later lines lose the chance to reuse it.
      this.#logger.warn({ err: String(err) }, 'could not store an answer in the response cache');
    }
  }
}

const FROM_CACHE: Omit<UpstreamResponse, 'status' | 'body'> = {
  headers: {},
  requestId: null,
  failure: null,
};

/** The cache key of a line, or null when its answer is not to be cached. */
export function cacheKey(
  item: ClaimedItem,
  upstream: string,
  settings: CacheSettings,
): string | null {
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(item.body) as Record<string, unknown>;
  } catch {
    return null;
  }
  if (settings.requests === 'deterministic' && !isDeterministic(item.endpoint, body)) return null;
  return createHash('sha256')
    .update(upstream)
    .update('\u0000')
    .update(item.endpoint)
    .update('\u0000')
    .update(canonicalJson(body))
    .digest('hex');
}

/** Embeddings and moderations always; generation with `temperature` 0 or a `seed`. */
export function isDeterministic(endpoint: string, body: Record<string, unknown>): boolean {
  if (endpoint.endsWith('/embeddings') || endpoint.endsWith('/moderations')) return true;
  if (body.stream === true) return false;
  return body.temperature === 0 || typeof body.seed === 'number';
}

/** JSON with object keys sorted at every level: the same request spelled twice hashes once. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
