import type { Clock } from '../lib/clock.ts';
import type { Logger } from '../lib/logger.ts';
import type { LineLimits } from '../domain/line-validation.ts';
import type { SchedulingSettings } from '../domain/scheduling-settings.ts';
import type { UpstreamRegistry } from '../providers/provider.ts';
import type { BlobStore } from '../store/blobs/blob-store.ts';
import type { Store } from '../store/store.ts';
import type { RetryPolicy } from './retry-policy.ts';
import type { CostSettings } from './cost-control.ts';
import type { CacheSettings } from './response-cache.ts';
import type { ExecutionChooser } from './native/execution-chooser.ts';
import type { NativeUpstream } from './native/native-options.ts';

/** Limits checked while a batch is `validating` (defaults are OpenAI's). */
export interface IngestLimits extends LineLimits {
  /** @default 50_000 */
  maxLines: number;
  /** Embedding inputs across all lines of one batch. @default 50_000 */
  maxEmbeddingInputs: number;
}

/** Engine tuning; every duration in ms. */
export interface EngineOptions {
  limits: IngestLimits;
  retry: RetryPolicy;
  /** Longest one upstream call may take, headers and body. @default 600_000 */
  requestTimeoutMs: number;
  /** How long a claim holds an item; must outlast a call. @default requestTimeoutMs + 60_000 */
  leaseMs: number;
  /** In-flight lines of a cancelled batch may finish for this long. @default 60_000 */
  cancelGraceMs: number;
  /** In-flight lines of an expired batch may finish for this long. @default 30_000 */
  expiryGraceMs: number;
  /** A line whose lease is lost this many times fails as poison. @default 3 */
  poisonAfter: number;
  /** Supervisor period (expiry, leases, finalizing). @default 500 */
  tickMs: number;
  /** Output/error files expire this long after the batch ends, unless the batch says otherwise. @default 30 days */
  outputExpiresAfterSeconds: number;
  /** On stop(), in-flight calls may finish for this long before they are released. @default 10_000 */
  shutdownGraceMs: number;
  /** Scheduling per upstream name; an upstream missing here runs with `DEFAULT_SCHEDULING`. */
  scheduling: ReadonlyMap<string, SchedulingSettings>;
  /** Batch mode and Batch API client per upstream name (issue 10); absent: every line realtime. */
  native?: ReadonlyMap<string, NativeUpstream>;
}

/** What the engine's systems share (Trigger.dev's SystemResources). */
export interface EngineDeps {
  store: Store;
  blobs: BlobStore;
  upstreams: UpstreamRegistry;
  clock: Clock;
  logger: Logger;
  options: EngineOptions;
  /** Chooses realtime or native per batch at ingest (set by createEngine when `options.native`). */
  execution?: ExecutionChooser;
  /** Prices, spend caps and the response cache (issue 13). Absent: every line is free, no cache. */
  costs?: EngineCostDeps | undefined;
}

/** The cost controls' configuration. */
export interface EngineCostDeps {
  settings: CostSettings;
  /** Upstreams whose answers are cached, and how. */
  cache: ReadonlyMap<string, CacheSettings>;
  /** One cache for every project (the operator's choice); otherwise one per project. */
  cacheShared: boolean;
  /** Send lines sharing a long prompt prefix together (prefix-order.ts). @default true */
  prefixOrder?: boolean | undefined;
  /** Upstreams whose lines get a `prompt_cache_key` (OpenAI's hosts). */
  promptCacheKeys?: ReadonlySet<string> | undefined;
}

export const DEFAULT_INGEST_LIMITS: IngestLimits = {
  maxLines: 50_000,
  maxEmbeddingInputs: 50_000,
  maxLineBytes: 1_048_576,
  maxJsonDepth: 64,
};
