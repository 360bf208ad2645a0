/** Why the ETA is what it is: the limit that runs out first, and where it comes from. */
export interface EstimateLimits {
  upstream: string | null;
  model: string | null;
  /** `rpm` / `tpm`: a rate limit; `concurrency`: latency × in-flight cap; `none`: nothing known. */
  binding: 'rpm' | 'tpm' | 'concurrency' | 'none';
  rpm: number | null;
  tpm: number | null;
  /** `config`, `headers` (learned from the upstream), `adaptive`, or `none`. */
  source: string;
}

/** GET /v1/files/{id}/estimate (an openbatch extension; OpenAI answers 404). */
export interface FileEstimateBody {
  object: 'batch.estimate';
  file_id: string;
  endpoint: string;
  completion_window: string;
  requests: number;
  invalid_lines: number;
  input_tokens: number;
  max_output_tokens: number;
  cost_usd: { standard: number; batch: number };
  /** Seconds from submission to the last answer at the upstream's limits, the queue included. */
  eta_seconds: number | null;
  /** Whether the ETA fits the completion window (null: no ETA). */
  fits_completion_window: boolean | null;
  /** Lines of other batches queued ahead on the same upstreams. */
  queued_ahead: number;
  limits: EstimateLimits;
}
