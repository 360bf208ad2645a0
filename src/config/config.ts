import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import {
  ADAPTIVE_MODES,
  resolveScheduling,
  TOKEN_ACCOUNTING_MODES,
  type AdaptiveMode,
  type SchedulingInput,
  type SchedulingSettings,
} from '../domain/scheduling-settings.ts';
import type { KeyGrant } from '../domain/records.ts';
import type { PriceEntry } from '../domain/price-book.ts';
import { parseS3Location, type S3Location } from './s3-location.ts';
import {
  batchFileFields,
  batchSettingsFromEnv,
  batchSettingsFromFile,
  resolveBatchSettings,
  type UpstreamBatchSettings,
} from './batch-settings.ts';

/** One upstream, as configured (the key already read from its environment variable). */
export interface UpstreamConfig {
  name: string;
  baseUrl: string;
  apiKey: string | null;
  /** Model names or globs routed here. @default ['*'] */
  models: string[];
  /** Connections to the upstream, and the ceiling of the adaptive limit. @default 64 */
  maxConcurrency: number;
  /** For the engine's scheduler only (compose passes it to the engine, not to the provider). */
  scheduling: SchedulingSettings;
  /** Real-time calls, the upstream's own Batch API, or either (issue 10). */
  batch: UpstreamBatchSettings;
  /** Prices by model or glob, USD per 1M tokens (issue 13); public prices fill gaps on known hosts. */
  pricing?: Record<string, PriceEntry> | undefined;
  /** The response cache for this upstream (null/absent: OPENBATCH_CACHE decides). */
  cache?: CacheInput | undefined;
}

/** A `cache` entry of an upstream in the config file. */
export interface CacheInput {
  enabled?: boolean | undefined;
  ttlSeconds?: number | undefined;
  maxEntries?: number | undefined;
  /** `deterministic` (default): embeddings, temperature 0 or a seed; `all`: every request. */
  requests?: 'deterministic' | 'all' | undefined;
}

/** An upstream as a file, the environment or the built-in simulator gives it. */
export interface UpstreamInput {
  name: string;
  baseUrl: string;
  apiKey: string | null;
  models?: string[] | undefined;
  maxConcurrency?: number | undefined;
  scheduling?: SchedulingInput | undefined;
  pricing?: Record<string, PriceEntry> | undefined;
  cache?: CacheInput | undefined;
  batch?: Partial<UpstreamBatchSettings> | undefined;
}

const DEFAULT_MAX_CONCURRENCY = 64;

/** The one place an upstream's defaults are filled in. */
export function upstreamConfig(u: UpstreamInput): UpstreamConfig {
  return {
    name: u.name,
    baseUrl: u.baseUrl,
    apiKey: u.apiKey,
    models: u.models ?? ['*'],
    maxConcurrency: u.maxConcurrency ?? DEFAULT_MAX_CONCURRENCY,
    scheduling: resolveScheduling(u.scheduling ?? {}),
    ...(u.pricing ? { pricing: u.pricing } : {}),
    ...(u.cache ? { cache: u.cache } : {}),
    batch: resolveBatchSettings(u.batch),
  };
}

/** Everything the server needs, parsed once from flags, environment and an optional file. */
export interface Config {
  host: string;
  port: number;
  dataDir: string;
  /**
   * PostgreSQL URL (OPENBATCH_DATABASE_URL or `database.url`): the store every process of a
   * cluster shares. Null: SQLite in the data directory. Holds a password: never logged.
   */
  databaseUrl: string | null;
  /**
   * Where file contents live (OPENBATCH_BLOB_STORE or `blobStore`): a directory every process
   * of a cluster can reach. Default: the data directory.
   */
  blobDir: string;
  /**
   * File contents in S3 (OPENBATCH_BLOB_STORE=s3://bucket/prefix); `blobDir` is then the data
   * directory, where this process keeps its spools. Null: files in `blobDir`.
   */
  blobS3: S3Location | null;
  upstreams: UpstreamConfig[];
  /** Static API keys: the key → its project and role. */
  apiKeys: Map<string, KeyGrant>;
  /** Serve a non-loopback address without API keys (only when explicitly asked). */
  allowPublicWithoutKeys: boolean;
  /** Without keys: browser origins allowed besides the server's own. */
  allowedOrigins: string[];
  /** Without keys: host names allowed besides loopback ones (`*`: any). */
  allowedHosts: string[];
  /** Port for the built-in simulator started when no upstream is configured (0 = any free port). */
  simulatorPort: number;
  logLevel: string;
  /** `json` lines, `pretty` for people, or `auto`: pretty when stderr is a terminal. */
  logFormat: LogFormat;
  /** Longest a client request (an upload included) may take before the socket is closed. */
  requestTimeoutMs: number;
  /** What one project may hold at once; past it, 429 (`quota_exceeded`). */
  quotas: {
    maxActiveBatches: number;
    maxFiles: number;
    maxStoredBytes: number;
    maxConcurrentUploads: number;
  };
  /** Server-wide caps; past them, 429 (`server_busy`). */
  http: {
    maxConnections: number;
    maxConcurrentBodies: number;
    maxBodyBufferBytes: number;
  };
  limits: {
    maxFileBytes: number;
    maxBatchFileBytes: number;
    maxJsonBodyBytes: number;
    maxLines: number;
    maxEmbeddingInputs: number;
    maxLineBytes: number;
    maxJsonDepth: number;
  };
  retention: {
    /** Uploaded batch input files without `expires_after`. @default 30 days (OpenAI's) */
    batchFileExpiresAfterSeconds: number;
    /** Output and error files of a batch without `output_expires_after`. @default 30 days */
    outputExpiresAfterSeconds: number;
    /**
     * Uploads of every other purpose without `expires_after`; 0: kept until deleted (OpenAI's
     * behaviour). @default 0
     */
    otherFileExpiresAfterSeconds: number;
  };
  webhooks: {
    /** OPENBATCH_WEBHOOK_URL + OPENBATCH_WEBHOOK_SECRET: one endpoint for every project's events. */
    url: string | null;
    secret: string | null;
    /** Let endpoints target private and loopback addresses (OPENBATCH_WEBHOOK_ALLOW_PRIVATE=1). */
    allowPrivate: boolean;
    retryInitialMs: number;
    retryMaxMs: number;
    giveUpAfterMs: number;
    timeoutMs: number;
  };
  /** Cost controls (issue 13). */
  costs: {
    /** OPENBATCH_CACHE=on: every upstream caches deterministic answers unless its `cache` says no. */
    cacheOn: boolean;
    /** OPENBATCH_CACHE_SHARED=1 (or `cacheShared`): one cache for every project. */
    cacheShared: boolean;
    /** A project's spend cap per batch (USD): the default and the ceiling of `max_cost_usd`. */
    projectMaxCostUsd: Map<string, number>;
    /** Prefix-aware order of claimed lines (OPENBATCH_PREFIX_ORDER=off turns it off). */
    prefixOrder: boolean;
  };
  engine: {
    requestTimeoutMs: number;
    maxAttempts: number;
    retryInitialMs: number;
    retryMaxMs: number;
    cancelGraceMs: number;
    expiryGraceMs: number;
    shutdownGraceMs: number;
    tickMs: number;
    poisonAfter: number;
    /**
     * How long a claimed chunk stays leased without renewal: a killed process's lines go back to
     * the others after this. Longer than requestTimeoutMs (a sent line is not renewed).
     */
    leaseMs: number;
  };
}

/** Flags given on the command line; they win over the environment and the file. */
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface CliOverrides {
  host?: string | undefined;
  logFormat?: string | undefined;
  port?: string | number | undefined;
  dataDir?: string | undefined;
  config?: string | undefined;
}

const THIRTY_DAYS_S = 30 * 24 * 3600;
const positiveInt = z.coerce.number().int().positive();

const upstreamFileSchema = z.object({
  name: z.string().min(1),
  baseUrl: z.url(),
  apiKeyEnv: z.string().optional(),
  models: z.array(z.string().min(1)).min(1).optional(),
  maxConcurrency: positiveInt.optional(),
  rpm: positiveInt.optional(),
  tpm: positiveInt.optional(),
  adaptive: z.enum(ADAPTIVE_MODES).optional(),
  minConcurrency: positiveInt.optional(),
  defaultMaxTokens: positiveInt.optional(),
  tokenAccounting: z.enum(TOKEN_ACCOUNTING_MODES).optional(),
  pricing: z
    .record(
      z.string().min(1),
      z
        .object({
          input: z.number().min(0),
          output: z.number().min(0),
          cachedInput: z.number().min(0).optional(),
          batchMultiplier: z.number().min(0).max(1).optional(),
        })
        .strict(),
    )
    .optional(),
  cache: z
    .object({
      enabled: z.boolean().optional(),
      ttlSeconds: positiveInt.optional(),
      maxEntries: positiveInt.optional(),
      requests: z.enum(['deterministic', 'all']).optional(),
    })
    .strict()
    .optional(),
  ...batchFileFields,
});

const fileSchema = z
  .object({
    host: z.string().optional(),
    port: positiveInt.optional(),
    dataDir: z.string().optional(),
    database: z
      .object({ url: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL') })
      .strict()
      .optional(),
    blobStore: z.string().min(1).optional(),
    upstreams: z.array(upstreamFileSchema).optional(),
    projects: z
      .record(z.string().min(1), z.object({ maxCostUsd: z.number().positive() }).strict())
      .optional(),
    cacheShared: z.boolean().optional(),
    limits: z
      .object({
        maxFileBytes: positiveInt,
        maxBatchFileBytes: positiveInt,
        maxJsonBodyBytes: positiveInt,
        maxLines: positiveInt,
        maxEmbeddingInputs: positiveInt,
        maxLineBytes: positiveInt,
        maxJsonDepth: positiveInt,
      })
      .partial()
      .optional(),
    retention: z
      .object({
        batchFileExpiresAfterSeconds: positiveInt,
        outputExpiresAfterSeconds: positiveInt,
        otherFileExpiresAfterSeconds: z.coerce.number().int().min(0),
      })
      .partial()
      .optional(),
    engine: z
      .object({
        requestTimeoutMs: positiveInt,
        maxAttempts: positiveInt,
        retryInitialMs: z.coerce.number().int().min(0),
        retryMaxMs: positiveInt,
        cancelGraceMs: z.coerce.number().int().min(0),
        expiryGraceMs: z.coerce.number().int().min(0),
        shutdownGraceMs: z.coerce.number().int().min(0),
        tickMs: positiveInt,
        poisonAfter: positiveInt,
        leaseMs: positiveInt,
      })
      .partial()
      .optional(),
  })
  .strict();

type Env = Record<string, string | undefined>;

/** Builds the frozen Config; a bad value stops start-up with the variable's or field's name. */
export function loadConfig(cli: CliOverrides = {}, env: Env = process.env): Config {
  const configPath = cli.config ?? env.OPENBATCH_CONFIG;
  const file = configPath ? readConfigFile(configPath) : {};
  const num = (name: string, fallback: number): number =>
    env[name] === undefined ? fallback : parseEnvInt(name, env[name]);
  const e = file.engine ?? {};
  const l = file.limits ?? {};
  return Object.freeze({
    host: cli.host ?? env.OPENBATCH_HOST ?? file.host ?? '127.0.0.1',
    port:
      cli.port !== undefined
        ? parseEnvInt('--port', String(cli.port))
        : num('OPENBATCH_PORT', file.port ?? 8080),
    dataDir: resolve(cli.dataDir ?? env.OPENBATCH_DATA_DIR ?? file.dataDir ?? '.openbatch'),
    databaseUrl: databaseUrl(env.OPENBATCH_DATABASE_URL ?? file.database?.url),
    blobDir: blobDir(
      env.OPENBATCH_BLOB_STORE ?? file.blobStore,
      resolve(cli.dataDir ?? env.OPENBATCH_DATA_DIR ?? file.dataDir ?? '.openbatch'),
    ),
    blobS3: parseS3Location(env.OPENBATCH_BLOB_STORE ?? file.blobStore, env),
    upstreams: file.upstreams
      ? file.upstreams.map((u) => fromFileUpstream(u, env))
      : envUpstreams(env),
    apiKeys: parseApiKeys(env.OPENBATCH_API_KEYS),
    allowPublicWithoutKeys: env.OPENBATCH_ALLOW_PUBLIC_WITHOUT_KEYS === '1',
    allowedOrigins: list(env.OPENBATCH_ALLOWED_ORIGINS),
    allowedHosts: list(env.OPENBATCH_ALLOWED_HOSTS),
    simulatorPort: num('OPENBATCH_SIMULATOR_PORT', 0),
    logLevel: env.OPENBATCH_LOG_LEVEL ?? 'info',
    logFormat: parseLogFormat(cli.logFormat ?? env.OPENBATCH_LOG_FORMAT ?? 'auto'),
    requestTimeoutMs: atLeast(
      'OPENBATCH_HTTP_REQUEST_TIMEOUT_MS',
      num('OPENBATCH_HTTP_REQUEST_TIMEOUT_MS', 600_000),
      1_000,
    ),
    quotas: {
      maxActiveBatches: num('OPENBATCH_MAX_ACTIVE_BATCHES', 500),
      maxFiles: num('OPENBATCH_MAX_FILES', 10_000),
      maxStoredBytes: num('OPENBATCH_MAX_STORED_BYTES', 50 * 1024 ** 3),
      maxConcurrentUploads: num('OPENBATCH_MAX_CONCURRENT_UPLOADS', 4),
    },
    http: {
      maxConnections: num('OPENBATCH_MAX_CONNECTIONS', 1_024),
      maxConcurrentBodies: num('OPENBATCH_MAX_CONCURRENT_BODIES', 256),
      maxBodyBufferBytes: num('OPENBATCH_MAX_BODY_BUFFER_BYTES', 96 * 1024 * 1024),
    },
    limits: {
      maxFileBytes: num('OPENBATCH_MAX_FILE_BYTES', l.maxFileBytes ?? 512 * 1024 * 1024),
      maxBatchFileBytes: num(
        'OPENBATCH_MAX_BATCH_FILE_BYTES',
        l.maxBatchFileBytes ?? 200 * 1024 * 1024,
      ),
      maxJsonBodyBytes: l.maxJsonBodyBytes ?? 32 * 1024 * 1024,
      maxLines: num('OPENBATCH_MAX_LINES', l.maxLines ?? 50_000),
      maxEmbeddingInputs: l.maxEmbeddingInputs ?? 50_000,
      maxLineBytes: num('OPENBATCH_MAX_LINE_BYTES', l.maxLineBytes ?? 1_048_576),
      maxJsonDepth: num('OPENBATCH_MAX_JSON_DEPTH', l.maxJsonDepth ?? 64),
    },
    retention: {
      batchFileExpiresAfterSeconds: num(
        'OPENBATCH_BATCH_FILE_EXPIRES_AFTER_SECONDS',
        file.retention?.batchFileExpiresAfterSeconds ?? THIRTY_DAYS_S,
      ),
      outputExpiresAfterSeconds: num(
        'OPENBATCH_OUTPUT_EXPIRES_AFTER_SECONDS',
        file.retention?.outputExpiresAfterSeconds ?? THIRTY_DAYS_S,
      ),
      otherFileExpiresAfterSeconds: num(
        'OPENBATCH_FILE_EXPIRES_AFTER_SECONDS',
        file.retention?.otherFileExpiresAfterSeconds ?? 0,
      ),
    },
    webhooks: envWebhooks(env, num),
    costs: {
      cacheOn: env.OPENBATCH_CACHE === 'on',
      cacheShared: env.OPENBATCH_CACHE_SHARED === '1' || file.cacheShared === true,
      prefixOrder: env.OPENBATCH_PREFIX_ORDER !== 'off',
      projectMaxCostUsd: new Map(
        Object.entries(file.projects ?? {}).map(([name, p]) => [name, p.maxCostUsd]),
      ),
    },
    engine: {
      requestTimeoutMs: atLeast(
        'OPENBATCH_REQUEST_TIMEOUT_MS',
        num('OPENBATCH_REQUEST_TIMEOUT_MS', e.requestTimeoutMs ?? 600_000),
        1,
      ),
      maxAttempts: num('OPENBATCH_MAX_ATTEMPTS', e.maxAttempts ?? 5),
      retryInitialMs: num('OPENBATCH_RETRY_INITIAL_MS', e.retryInitialMs ?? 1_000),
      retryMaxMs: num('OPENBATCH_RETRY_MAX_MS', e.retryMaxMs ?? 60_000),
      cancelGraceMs: num('OPENBATCH_CANCEL_GRACE_MS', e.cancelGraceMs ?? 60_000),
      expiryGraceMs: num('OPENBATCH_EXPIRY_GRACE_MS', e.expiryGraceMs ?? 30_000),
      shutdownGraceMs: num('OPENBATCH_SHUTDOWN_GRACE_MS', e.shutdownGraceMs ?? 10_000),
      tickMs: num('OPENBATCH_TICK_MS', e.tickMs ?? 500),
      poisonAfter: num('OPENBATCH_POISON_AFTER', e.poisonAfter ?? 3),
      leaseMs: leaseMs(
        num('OPENBATCH_LEASE_MS', e.leaseMs ?? 0),
        num('OPENBATCH_REQUEST_TIMEOUT_MS', e.requestTimeoutMs ?? 600_000),
      ),
    },
  });
}

/** 0: the default, a minute past the request timeout. */
function leaseMs(configured: number, requestTimeoutMs: number): number {
  if (configured === 0) return requestTimeoutMs + 60_000;
  if (configured <= requestTimeoutMs)
    throw new Error(
      `OPENBATCH_LEASE_MS (${configured}) must be longer than the request timeout (${requestTimeoutMs} ms): a lease must outlive the calls under it`,
    );
  return configured;
}

function envWebhooks(
  env: Env,
  num: (name: string, fallback: number) => number,
): Config['webhooks'] {
  const url = env.OPENBATCH_WEBHOOK_URL || null;
  const secret = env.OPENBATCH_WEBHOOK_SECRET || null;
  if (url !== null && !URL.canParse(url)) throw new Error('OPENBATCH_WEBHOOK_URL: not a URL');
  if (url !== null && secret === null)
    throw new Error(
      'OPENBATCH_WEBHOOK_URL is set: OPENBATCH_WEBHOOK_SECRET (whsec_…) is needed too',
    );
  if (secret !== null && !/^whsec_[A-Za-z0-9+/=]{16,}$/.test(secret))
    throw new Error('OPENBATCH_WEBHOOK_SECRET: expected whsec_ followed by base64');
  return {
    url,
    secret,
    allowPrivate: env.OPENBATCH_WEBHOOK_ALLOW_PRIVATE === '1',
    retryInitialMs: num('OPENBATCH_WEBHOOK_RETRY_INITIAL_MS', 5_000),
    retryMaxMs: num('OPENBATCH_WEBHOOK_RETRY_MAX_MS', 3_600_000),
    giveUpAfterMs: num('OPENBATCH_WEBHOOK_GIVE_UP_AFTER_MS', 72 * 3600 * 1000),
    timeoutMs: num('OPENBATCH_WEBHOOK_TIMEOUT_MS', 10_000),
  };
}

const list = (value: string | undefined): string[] =>
  (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

/** A setting below `min` stops start-up with its name, rather than failing somewhere later. */
function atLeast(name: string, value: number, min: number): number {
  if (value < min) throw new Error(`${name}: expected at least ${min}, got ${value}`);
  return value;
}

function parseEnvInt(name: string, value: string | undefined): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new Error(`${name}: expected a non-negative integer, got '${value}'`);
  return n;
}

function readConfigFile(path: string): z.infer<typeof fileSchema> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`config file ${path}: ${(err as Error).message}`);
  }
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(
      `config file ${path}: ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`,
    );
  }
  return parsed.data;
}

function fromFileUpstream(u: z.infer<typeof upstreamFileSchema>, env: Env): UpstreamConfig {
  let apiKey: string | null = null;
  if (u.apiKeyEnv) {
    apiKey = env[u.apiKeyEnv] ?? null;
    if (apiKey === null)
      throw new Error(`upstream '${u.name}': environment variable ${u.apiKeyEnv} is not set`);
  }
  const { rpm, tpm, adaptive, minConcurrency, defaultMaxTokens, tokenAccounting } = u;
  return upstreamConfig({
    name: u.name,
    baseUrl: u.baseUrl,
    apiKey,
    models: u.models,
    maxConcurrency: u.maxConcurrency,
    scheduling: { rpm, tpm, adaptive, minConcurrency, defaultMaxTokens, tokenAccounting },
    pricing: u.pricing,
    cache: u.cache,
    batch: batchSettingsFromFile(u),
  });
}

/** One upstream from OPENBATCH_UPSTREAM_URL, or OpenAI itself when only OPENAI_API_KEY is set. */
function envUpstreams(env: Env): UpstreamConfig[] {
  const int = (name: string): number | undefined =>
    env[name] === undefined ? undefined : parseEnvInt(name, env[name]);
  const common = {
    maxConcurrency: int('OPENBATCH_UPSTREAM_MAX_CONCURRENCY'),
    scheduling: {
      rpm: int('OPENBATCH_UPSTREAM_RPM'),
      tpm: int('OPENBATCH_UPSTREAM_TPM'),
      adaptive: envAdaptive(env.OPENBATCH_UPSTREAM_ADAPTIVE),
      minConcurrency: int('OPENBATCH_UPSTREAM_MIN_CONCURRENCY'),
    },
    batch: batchSettingsFromEnv(env),
  };
  if (env.OPENBATCH_UPSTREAM_URL) {
    if (!URL.canParse(env.OPENBATCH_UPSTREAM_URL))
      throw new Error(`OPENBATCH_UPSTREAM_URL: not a URL`);
    const apiKey = env.OPENBATCH_UPSTREAM_API_KEY ?? null;
    return [
      upstreamConfig({ name: 'default', baseUrl: env.OPENBATCH_UPSTREAM_URL, apiKey, ...common }),
    ];
  }
  if (env.OPENAI_API_KEY) {
    const baseUrl = 'https://api.openai.com/v1';
    return [upstreamConfig({ name: 'openai', baseUrl, apiKey: env.OPENAI_API_KEY, ...common })];
  }
  return [];
}

function envAdaptive(value: string | undefined): AdaptiveMode | undefined {
  if (value === undefined) return undefined;
  const mode = ADAPTIVE_MODES.find((m) => m === value);
  if (!mode) throw new Error(`OPENBATCH_UPSTREAM_ADAPTIVE: expected ${ADAPTIVE_MODES.join(', ')}`);
  return mode;
}

/** Static keys shorter than this are refused: a guessable key is no key. */
export const MIN_STATIC_KEY_CHARS = 16;

/**
 * `OPENBATCH_API_KEYS=key1:projectA,key2:projectB:admin` (a key without a project joins
 * `default`; `:admin` gives the key the admin role).
 */
function parseApiKeys(value: string | undefined): Map<string, KeyGrant> {
  const keys = new Map<string, KeyGrant>();
  for (const entry of (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const admin = entry.endsWith(':admin') && entry.split(':').length >= 3;
    const rest = admin ? entry.slice(0, -':admin'.length) : entry;
    const at = rest.lastIndexOf(':');
    const key = at > 0 ? rest.slice(0, at) : rest;
    const project = at > 0 ? rest.slice(at + 1) : 'default';
    if (key.length < MIN_STATIC_KEY_CHARS)
      throw new Error(
        `OPENBATCH_API_KEYS: every key must be at least ${MIN_STATIC_KEY_CHARS} characters (one is ${key.length})`,
      );
    keys.set(key, { project, role: admin ? 'admin' : 'member' });
  }
  return keys;
}

function databaseUrl(raw: string | undefined): string | null {
  if (raw === undefined || raw === '') return null;
  if (!/^postgres(ql)?:\/\//.test(raw))
    throw new Error('OPENBATCH_DATABASE_URL: expected a postgres:// URL');
  return raw;
}

function blobDir(raw: string | undefined, dataDir: string): string {
  if (raw === undefined || raw === '' || raw.startsWith('s3://')) return dataDir;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw))
    throw new Error(
      `OPENBATCH_BLOB_STORE: expected a directory path or s3://bucket/prefix, got '${raw.split('://')[0]}://…'`,
    );
  return resolve(raw);
}

function parseLogFormat(value: string): LogFormat {
  if ((LOG_FORMATS as readonly string[]).includes(value)) return value as LogFormat;
  throw new Error(`log format must be one of ${LOG_FORMATS.join(', ')} (got '${value}')`);
}
