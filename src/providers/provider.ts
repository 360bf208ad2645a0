import type { Readable } from 'node:stream';
import type { CallStop } from '../lib/call-stop.ts';

/** One call to an upstream. `path` is OpenAI's (`/v1/chat/completions`); `body` is JSON text. */
export interface UpstreamRequest {
  path: string;
  body: string;
  /** Stopping it rejects the call with `stop.reason`. */
  stop: CallStop;
}

/** Any HTTP answer, 2xx or not; only transport failures throw. */
export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  requestId: string | null;
  /** The non-2xx answer classified (retryable, retry-after); null for 2xx. */
  failure: ProviderError | null;
}

/** A streamed answer for the real-time passthrough. */
export interface UpstreamStream {
  status: number;
  headers: Record<string, string>;
  body: Readable;
}

/** An OpenAI-compatible endpoint the engine sends lines to. */
export interface Upstream {
  readonly name: string;
  /** Requests this upstream may have in flight at once (the ceiling of the adaptive limit). */
  readonly maxConcurrency: number;
  send(req: UpstreamRequest): Promise<UpstreamResponse>;
  /** Forwards a request as is and streams the answer back (status and body passed through). */
  forward(req: {
    method: 'GET' | 'POST';
    path: string;
    body?: string;
    signal: AbortSignal;
  }): Promise<UpstreamStream>;
  close(): Promise<void>;
}

/** Chooses the upstream for a model (server configuration only, never the request line). */
export interface UpstreamRegistry {
  resolve(model: string): Upstream | null;
  all(): readonly Upstream[];
  close(): Promise<void>;
}

export const PROVIDER_ERROR_KINDS = [
  'rate_limited',
  'timeout',
  'connection',
  'server',
  'client',
  'invalid_response',
] as const;
export type ProviderErrorKind = (typeof PROVIDER_ERROR_KINDS)[number];

/**
 * An upstream failure classified once: the engine never looks at HTTP statuses or socket codes.
 * `maybeSent` marks failures after the request may have reached the model (reset after write,
 * timeout): retrying them can cost money, so they are counted apart.
 */
export class ProviderError extends Error {
  override name = 'ProviderError';
  readonly kind: ProviderErrorKind;
  readonly status: number | null;
  readonly retryAfterMs: number | null;
  readonly maybeSent: boolean;
  /** Set when the upstream itself said whether to retry (`x-should-retry`). */
  readonly shouldRetry: boolean | null;

  constructor(
    kind: ProviderErrorKind,
    message: string,
    opts: {
      status?: number;
      retryAfterMs?: number | null;
      maybeSent?: boolean;
      shouldRetry?: boolean | null;
      cause?: unknown;
    } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.kind = kind;
    this.status = opts.status ?? null;
    this.retryAfterMs = opts.retryAfterMs ?? null;
    this.maybeSent = opts.maybeSent ?? true;
    this.shouldRetry = opts.shouldRetry ?? null;
  }

  /** 408, 409, 429, ≥500, timeouts, connection errors and bad bodies are retried; other 4xx never. */
  get retryable(): boolean {
    if (this.shouldRetry !== null) return this.shouldRetry;
    return this.kind !== 'client';
  }
}

/** An upstream batch as its Batch API shows it (the fields the native runner reads). */
export interface UpstreamBatchInfo {
  id: string;
  status: string;
  output_file_id: string | null;
  error_file_id: string | null;
  errors: { data?: { code?: string; message?: string }[] } | null;
  metadata: Record<string, string> | null;
  request_counts?: { total: number; completed: number; failed: number } | null;
}

/**
 * An upstream's own Files + Batches API (OpenAI's shape), for native batch passthrough. Non-2xx
 * answers throw a ProviderError (`client` for 4xx except 408/409/429).
 */
export interface BatchApi {
  /** Whether GET /v1/batches?limit=1 answers a list of batches; `detail` says what it answered. */
  probe(signal: AbortSignal): Promise<{ available: boolean; detail: string }>;
  uploadFile(filename: string, content: Buffer, signal: AbortSignal): Promise<{ id: string }>;
  createBatch(
    params: { input_file_id: string; endpoint: string; metadata: Record<string, string> },
    signal: AbortSignal,
  ): Promise<UpstreamBatchInfo>;
  getBatch(id: string, signal: AbortSignal): Promise<UpstreamBatchInfo>;
  /** Newest first, a page after `after`. */
  listBatches(
    after: string | null,
    signal: AbortSignal,
  ): Promise<{ data: UpstreamBatchInfo[]; has_more: boolean }>;
  cancelBatch(id: string, signal: AbortSignal): Promise<UpstreamBatchInfo>;
  fileContent(id: string, signal: AbortSignal): Promise<string>;
  deleteFile(id: string, signal: AbortSignal): Promise<void>;
}
