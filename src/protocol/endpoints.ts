/** Endpoints a batch (and the real-time passthrough) may target. */
export const BATCH_ENDPOINTS = [
  '/v1/chat/completions',
  '/v1/embeddings',
  '/v1/completions',
  '/v1/responses',
  '/v1/moderations',
] as const;

export type BatchEndpoint = (typeof BATCH_ENDPOINTS)[number];

export function isBatchEndpoint(value: unknown): value is BatchEndpoint {
  return typeof value === 'string' && (BATCH_ENDPOINTS as readonly string[]).includes(value);
}

/** Human label used in OpenAI's per-endpoint messages ("Chat Completions: Streaming is not …"). */
export const ENDPOINT_LABELS: Record<BatchEndpoint, string> = {
  '/v1/chat/completions': 'Chat Completions',
  '/v1/embeddings': 'Embeddings',
  '/v1/completions': 'Completions',
  '/v1/responses': 'Responses',
  '/v1/moderations': 'Moderations',
};
