/** Public types of the simulated OpenAI-compatible upstream (re-exported by simulator.ts). */

/** Source of time; tests inject a manual one. Latency timers still use real timers. */
export interface SimClock {
  nowMs(): number;
}

export interface SimCapacity {
  /** Requests processed concurrently. */
  slots: number;
  /** Requests allowed to wait (FIFO) for a slot; beyond that the answer is 503. */
  queue: number;
  /** Extra latency per request waiting in the queue when a request starts service. @default 0 */
  latencyPerQueuedMs?: number;
}

export interface SimulatorOptions {
  /** Mean added latency per request. @default 0 */
  latencyMs?: number;
  /** Uniform +- jitter around latencyMs. @default 0 */
  latencyJitterMs?: number;
  /** Requests per minute per model. @default undefined (no limit) */
  rpm?: number;
  /** Tokens per minute per model (prompt estimate + max tokens, 16 when absent). @default undefined */
  tpm?: number;
  /** Probability 0..1 of an injected fault on a request without a directive. @default 0 */
  failRate?: number;
  /** Statuses used for injected faults (429 ones carry retry-after). @default [500] */
  failStatuses?: number[];
  /** retry-after-ms sent with injected/directive 429s (retry-after is its ceil in seconds). @default 200 */
  retryAfterMs?: number;
  /** Optional JSONL call log path (appended, buffered, flushed on close()). */
  logFile?: string;
  /** PRNG seed for deterministic jitter and fault choice. @default 1 */
  seed?: number;
  clock?: SimClock;
  /** Header-less "vLLM-like" mode: bounded concurrency and queue, 503 when the queue is full. */
  capacity?: SimCapacity;
  /** Returned by GET /v1/models; any model name is still accepted on requests. */
  models?: string[];
  /**
   * Model a prompt cache: chat prompts of ≥ 1,024 tokens sharing a prefix with one of the last
   * `entries` prompts report it in `usage.prompt_tokens_details.cached_tokens`. @default off
   */
  prefixCache?: { entries: number };
  /**
   * OpenAI's Files + Batches API (`/v1/files`, `/v1/batches`). Absent: those paths answer 404,
   * like vLLM or Ollama. @default undefined (off)
   */
  batchApi?: SimBatchApiOptions;
}

/** The simulated Batch API's behaviour. */
export interface SimBatchApiOptions {
  /** From `in_progress` to `completed`; lines finish evenly over it. @default 1000 */
  turnaroundMs?: number;
  /** Enqueued prompt-token limit per model (OpenAI's batch queue limit). */
  queueTokens?: Record<string, number>;
  /** The limit for a model not in `queueTokens`. @default none */
  defaultQueueTokens?: number;
  /** How long a cancelled batch stays `cancelling`. @default 0 */
  cancelDelayMs?: number;
  /** Overrides every batch's completion window (expiry tests). */
  windowMs?: number;
  /** Named in the token-limit message. @default 'org-sim' */
  organization?: string;
  /**
   * POST /v1/batches is answered this long after the batch was made (crash tests: a create whose
   * answer the client never saw). @default 0
   */
  createLatencyMs?: number;
  /** GET /v1/files/{id}/content is answered this long after it came. @default 0 */
  contentLatencyMs?: number;
}

/** One batch the simulated Batch API holds (tests check what was created). */
export interface SimUpstreamBatch {
  id: string;
  status: string;
  model: string | null;
  lines: number;
  tokens: number;
  metadata: Record<string, string> | null;
  errorCodes: string[];
}

/**
 * Why a call did not get a plain answer: 'status' = scripted or random error status,
 * 'reset' = socket destroyed before headers, 'reset-mid-body' = destroyed after part of the body,
 * 'trickle' = slow but complete body, 'overloaded' = capacity-mode 503.
 */
export type SimFault =
  | 'reset'
  | 'reset-mid-body'
  | 'hang'
  | 'malformed'
  | 'trickle'
  | 'status'
  | 'rate_limited'
  | 'overloaded';

export interface SimCall {
  seq: number;
  atMs: number;
  path: string;
  model: string | null;
  /** Status answered; 0 when nothing was answered (reset, hang). */
  status: number;
  bodySha256: string;
  marker: string | null;
  fault: SimFault | null;
}

export interface Simulator {
  /** Defaults: host 127.0.0.1, port 0. url has no /v1 suffix. */
  listen(port?: number, host?: string): Promise<{ url: string; port: number }>;
  /** Closes the server, destroys every socket (hung ones too) and flushes the log file. */
  close(): Promise<void>;
  /** In-memory call log, a copy bounded to the last 1,000,000 entries. */
  calls(): readonly SimCall[];
  /** Clears the call log, rate-limit windows and `xN` directive counters. */
  reset(): void;
  /** Every batch created on the simulated Batch API, oldest first (empty when it is off). */
  upstreamBatches(): SimUpstreamBatch[];
}
