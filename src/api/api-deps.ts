import type { KeyGrant, KeyRole } from '../domain/records.ts';
import type { Clock } from '../lib/clock.ts';
import type { TokenUsage } from '../protocol/token-usage.ts';
import type { Logger } from '../lib/logger.ts';
import type { UpstreamRegistry } from '../providers/provider.ts';
import type { BlobStore } from '../store/blobs/blob-store.ts';
import type { Store } from '../store/store.ts';
import type { EngineFacade } from '../engine/engine.ts';
import type { BodyBudget } from './body-budget.ts';
import type { OpenModePolicy } from './open-mode-guard.ts';
import type { Quotas } from './quotas.ts';

/** Upload limits (defaults are OpenAI's). */
export interface UploadLimits {
  /** Any upload. @default 512 MiB */
  maxFileBytes: number;
  /** Uploads with purpose=batch. @default 200 MB */
  maxBatchFileBytes: number;
  /** Request bodies of JSON routes and the passthrough. @default 32 MiB */
  maxJsonBodyBytes: number;
}

/** The Prometheus exposition /metrics serves (built in compose.ts from src/metrics/). */
export interface MetricsEndpoint {
  readonly contentType: string;
  render(): Promise<string>;
}

/** Dollars a batch's usage costs at standard and batch prices (null: price unknown). */
export type CostOf = (
  model: string,
  usage: TokenUsage,
) => Promise<{ standard: number; batch: number } | null>;

/** Everything the HTTP layer needs, built once in compose.ts. */
export interface ApiDeps {
  store: Store;
  blobs: BlobStore;
  upstreams: UpstreamRegistry;
  engine: EngineFacade;
  clock: Clock;
  logger: Logger;
  /** Keys from configuration: sha256 hex of the key → its project and role. */
  staticKeys: ReadonlyMap<string, KeyGrant>;
  limits: UploadLimits;
  metrics: MetricsEndpoint;
  costOf: CostOf;
  quotas: Quotas;
  /** JSON bodies in memory at once, server-wide. */
  bodies: BodyBudget;
  /** Who may call a server without keys (browser and DNS-rebinding guard). */
  openMode: OpenModePolicy;
  retention: Retention;
  webhooks: {
    /** Endpoints may target private and loopback addresses. */
    allowPrivate: boolean;
    /** The environment's endpoint (listed, never deletable), if configured. */
    envEndpointUrl: string | null;
  };
}

/** How long files live unless a request says otherwise (OpenAI: batch input files 30 days). */
export interface Retention {
  /** Uploads with purpose=batch (and inputs made by a retry) without `expires_after`. */
  batchFileExpiresAfterSeconds: number;
  /** Uploads of every other purpose without `expires_after`; 0: kept until deleted. */
  otherFileExpiresAfterSeconds: number;
}

/**
 * Hono variables set by the auth middleware: the caller's project and its key's role (an admin
 * sees every project: dashboard, /metrics; open mode, loopback only, is admin). `requestId` is
 * set for every request first, so log lines and the x-request-id header agree.
 */
export interface ApiEnv {
  Variables: { project: string; role: KeyRole; requestId: string };
}
