import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Hono } from 'hono';
import { createApp } from './api/app.ts';
import type { ApiEnv, CostOf } from './api/api-deps.ts';
import type { ModelPrice } from './sdk/pricing.ts';
import { hashApiKey } from './api/auth.ts';
import { BodyBudget } from './api/body-budget.ts';
import { Quotas } from './api/quotas.ts';
import type { Config, UpstreamConfig } from './config/config.ts';
import { WEBHOOK_EVENT_TYPES } from './domain/webhooks.ts';
import { withStatusLog } from './engine/batch-status-log.ts';
import type { KeyGrant } from './domain/records.ts';
import { createEngine, type Engine } from './engine/engine.ts';
import { createOpenAiBatchApi } from './providers/openai-batch-api.ts';
import { WebhookOutbox } from './engine/webhook-outbox.ts';
import { DEFAULT_RETRY_POLICY } from './engine/retry-policy.ts';
import { systemClock, type Clock } from './lib/clock.ts';
import type { Logger } from './lib/logger.ts';
import { acquirePidLock } from './lib/pid-lock.ts';
import { createOpenAiCompatible } from './providers/openai-compatible.ts';
import { createWebhookSender } from './providers/webhook-http.ts';
import type { UpstreamRegistry } from './providers/provider.ts';
import { createUpstreamRegistry } from './providers/upstream-registry.ts';
import { createServerMetrics } from './metrics/server-metrics.ts';
import { engineCosts } from './engine-costs.ts';
import type { BlobStore } from './store/blobs/blob-store.ts';
import { createFsBlobStore } from './store/blobs/fs-blob-store.ts';
import { createS3BlobStore } from './store/blobs/s3-blob-store.ts';
import { createPostgresStore } from './store/postgres/postgres-store.ts';
import { createSqliteStore } from './store/sqlite/sqlite-store.ts';
import type { Store } from './store/store.ts';

/** A running openbatch server minus the socket: the caller listens with `app.fetch`. */
export interface ServerRuntime {
  app: Hono<ApiEnv>;
  engine: Engine;
  store: Store;
  upstreams: UpstreamRegistry;
  /** Stops the engine (draining in-flight calls), closes pools and the database. */
  close(): Promise<void>;
}

/** The composition root: Config → store, upstreams, engine, app. The only place that picks them. */
export async function createServerRuntime(
  config: Config,
  logger: Logger,
  clock: Clock = systemClock,
): Promise<ServerRuntime> {
  restrictDataDir(config.dataDir);
  const releaseLock = acquirePidLock(join(config.dataDir, 'server.pid'));
  const store = withStatusLog(await openStore(config), logger);
  if (!store.shared) restrictDatabaseFiles(config.dataDir);
  const blobs = await openBlobStore(config, store.shared, logger);
  if (store.shared && !config.blobS3 && config.blobDir === config.dataDir)
    logger.warn(
      { blobDir: config.blobDir },
      "a shared database with files in this process's data directory: other processes cannot read them; set OPENBATCH_BLOB_STORE to a directory every process reaches",
    );
  const metrics = createServerMetrics(() => clock.nowMs());
  const upstreams = createUpstreamRegistry(
    config.upstreams.map((u) => ({
      upstream: metrics.instrument(buildUpstream(u, config, clock)),
      models: u.models,
    })),
  );
  const { limits, engine: e } = config;
  const engine = createEngine({
    store,
    blobs,
    upstreams,
    clock,
    logger,
    options: {
      limits: {
        maxLines: limits.maxLines,
        maxEmbeddingInputs: limits.maxEmbeddingInputs,
        maxLineBytes: limits.maxLineBytes,
        maxJsonDepth: limits.maxJsonDepth,
      },
      retry: {
        ...DEFAULT_RETRY_POLICY,
        maximumAttempts: e.maxAttempts,
        initialIntervalMs: e.retryInitialMs,
        maximumIntervalMs: Math.max(e.retryMaxMs, e.retryInitialMs),
      },
      requestTimeoutMs: e.requestTimeoutMs,
      leaseMs: e.leaseMs,
      cancelGraceMs: e.cancelGraceMs,
      expiryGraceMs: e.expiryGraceMs,
      poisonAfter: e.poisonAfter,
      tickMs: e.tickMs,
      outputExpiresAfterSeconds: config.retention.outputExpiresAfterSeconds,
      shutdownGraceMs: e.shutdownGraceMs,
      scheduling: new Map(config.upstreams.map((u) => [u.name, u.scheduling])),
      native: new Map(
        config.upstreams.map((u) => [
          u.name,
          { settings: u.batch, api: createOpenAiBatchApi(u.baseUrl, u.apiKey) },
        ]),
      ),
    },
    costs: engineCosts(config),
  });
  const staticKeys = new Map([...config.apiKeys].map(([key, grant]) => [hashApiKey(key), grant]));
  const app = createApp({
    store,
    blobs,
    upstreams,
    engine,
    clock,
    logger,
    staticKeys,
    openMode: { allowedOrigins: config.allowedOrigins, allowedHosts: config.allowedHosts },
    quotas: new Quotas(store, config.quotas),
    bodies: new BodyBudget(config.http.maxConcurrentBodies, config.http.maxBodyBufferBytes),
    limits: {
      maxFileBytes: limits.maxFileBytes,
      maxBatchFileBytes: limits.maxBatchFileBytes,
      maxJsonBodyBytes: limits.maxJsonBodyBytes,
    },
    retention: {
      batchFileExpiresAfterSeconds: config.retention.batchFileExpiresAfterSeconds,
      otherFileExpiresAfterSeconds: config.retention.otherFileExpiresAfterSeconds,
    },
    webhooks: { allowPrivate: config.webhooks.allowPrivate, envEndpointUrl: config.webhooks.url },
    metrics,
    costOf: createCostOf(),
  });
  metrics.watch({ store, engine });
  await engine.start();
  const webhooks = createWebhookOutbox(config, store, clock, logger);
  webhooks.start();
  return {
    app,
    engine,
    store,
    upstreams,
    close: async () => {
      await engine.stop();
      await webhooks.stop();
      await upstreams.close();
      await store.close();
      releaseLock();
    },
  };
}

function createWebhookOutbox(
  config: Config,
  store: Store,
  clock: Clock,
  logger: Logger,
): WebhookOutbox {
  const w = config.webhooks;
  return new WebhookOutbox({
    store,
    clock,
    logger,
    sender: createWebhookSender({ timeoutMs: w.timeoutMs, allowPrivate: w.allowPrivate }),
    options: {
      envEndpoint:
        w.url && w.secret ? { url: w.url, secret: w.secret, events: WEBHOOK_EVENT_TYPES } : null,
      retryInitialMs: w.retryInitialMs,
      retryMaxMs: Math.max(w.retryMaxMs, w.retryInitialMs),
      giveUpAfterMs: w.giveUpAfterMs,
      timeoutMs: w.timeoutMs,
      pollMs: Math.min(config.engine.tickMs, 1_000),
      maxInFlight: 16,
    },
  });
}

/**
 * The data directory holds every project's files and answers: readable by its owner only
 * (blobs and spools are created 0600 by their stores). A directory left 0755 by an older
 * version is tightened too. No process umask: `openbatch run` writes the user's own files.
 */
function restrictDataDir(dataDir: string): void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  chmodSync(dataDir, 0o700);
}

function restrictDatabaseFiles(dataDir: string): void {
  for (const name of ['openbatch.db', 'openbatch.db-wal', 'openbatch.db-shm']) {
    const path = join(dataDir, name);
    if (existsSync(path)) chmodSync(path, 0o600);
  }
}

function buildUpstream(u: UpstreamConfig, config: Config, clock: Clock) {
  return createOpenAiCompatible({
    name: u.name,
    baseUrl: u.baseUrl,
    apiKey: u.apiKey,
    maxConcurrency: u.maxConcurrency,
    headersTimeoutMs: config.engine.requestTimeoutMs,
    bodyTimeoutMs: config.engine.requestTimeoutMs,
    maxResponseBytes: 64 * 1024 * 1024,
    nowMs: () => clock.nowMs(),
  });
}

/**
 * The configured store: PostgreSQL when a database URL is set (shared by every process pointed at
 * it), else SQLite in the data directory (one process).
 */
async function openStore(config: Pick<Config, 'dataDir' | 'databaseUrl'>): Promise<Store> {
  if (config.databaseUrl) return createPostgresStore(config.databaseUrl);
  mkdirSync(config.dataDir, { recursive: true });
  return createSqliteStore(join(config.dataDir, 'openbatch.db'));
}

/**
 * The configured file storage: S3 when OPENBATCH_BLOB_STORE is an s3:// URL (spools then stay in
 * this process's data directory), else a directory (the data directory by default).
 */
async function openBlobStore(config: Config, shared: boolean, logger: Logger): Promise<BlobStore> {
  if (config.blobS3)
    return createS3BlobStore({ ...config.blobS3, spoolDir: join(config.dataDir, 'spool') }, logger);
  return createFsBlobStore(config.blobDir, { shared });
}

/**
 * Batch cost for the dashboard from the SDK's price data, loaded on first use (a server nobody
 * looks at never pays for the price tables) and cached per model.
 */
function createCostOf(): CostOf {
  const prices = new Map<string, ModelPrice | null>();
  return async (model, usage) => {
    const { priceForModel, costOf } = await import('./sdk/pricing.ts');
    if (!prices.has(model)) prices.set(model, priceForModel(model));
    const price = prices.get(model);
    if (!price) return null;
    const cost = costOf(usage, price);
    return { standard: cost.standard.total, batch: cost.batch.total };
  };
}

/** Stores a new API key's hash for `project` in the configured database. */
export async function storeApiKey(
  config: Pick<Config, 'dataDir' | 'databaseUrl'>,
  keyHash: string,
  grant: KeyGrant,
  nowMs: number,
): Promise<void> {
  restrictDataDir(config.dataDir);
  const store = await openStore(config);
  if (!store.shared) restrictDatabaseFiles(config.dataDir);
  try {
    await store.insertApiKey({ key_hash: keyHash, ...grant, created_at_ms: nowMs });
  } finally {
    await store.close();
  }
}

export { hashApiKey };
