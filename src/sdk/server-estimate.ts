import { createReadStream } from 'node:fs';
import type OpenAI from 'openai';
import type { FileEstimateBody } from '../protocol/file-estimate.ts';

/** What an openbatch server answers at GET /v1/files/{id}/estimate (issue 13). */
export type ServerEstimate = FileEstimateBody;

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
