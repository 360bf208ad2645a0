import { createReadStream } from 'node:fs';
import type OpenAI from 'openai';

/** What an openbatch server answers at GET /v1/files/{id}/estimate (issue 13). */
export interface ServerEstimate {
  object: 'batch.estimate';
  file_id: string;
  endpoint: string;
  completion_window: string;
  requests: number;
  invalid_lines: number;
  input_tokens: number;
  max_output_tokens: number;
  cost_usd: { standard: number; batch: number };
  eta_seconds: number | null;
  fits_completion_window: boolean | null;
  queued_ahead: number;
  limits: {
    upstream: string | null;
    model: string | null;
    binding: string;
    rpm: number | null;
    tpm: number | null;
    source: string;
  };
}

/**
 * Uploads `path`, asks the server for its estimate (its prices, its limits, its queue) and
 * deletes the upload again. Only openbatch servers have this endpoint (OpenAI answers 404).
 */
export async function estimateOnServer(
  client: OpenAI,
  path: string,
  opts: { endpoint?: string | undefined; completionWindow?: string | undefined } = {},
): Promise<ServerEstimate> {
  const file = await client.files.create({ file: createReadStream(path), purpose: 'batch' });
  try {
    return await client.get(`/files/${file.id}/estimate`, {
      query: {
        endpoint: opts.endpoint ?? '/v1/chat/completions',
        completion_window: opts.completionWindow ?? '24h',
      },
    });
  } finally {
    await client.files.delete(file.id).catch(() => undefined);
  }
}
