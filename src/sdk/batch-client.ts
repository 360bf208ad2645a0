import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import OpenAI, { APIConnectionError, InternalServerError } from 'openai';
import type { Batch, BatchCreateParams } from 'openai/resources/batches';
import { readJsonlLines } from '../lib/jsonl-lines.ts';

/** How to reach the Batch API: a ready client, or the pieces to build one (openai-node style). */
export interface ClientOptions {
  /** Any OpenAI-compatible client (OpenAI, an openbatch server, a test double). */
  client?: OpenAI | undefined;
  /** @default process.env.OPENAI_BASE_URL, else https://api.openai.com/v1 */
  baseURL?: string | undefined;
  /** @default process.env.OPENAI_API_KEY */
  apiKey?: string | undefined;
  /** Retries of one HTTP call (connection errors, 408, 409, 429, ≥500). @default 3 */
  maxRetries?: number | undefined;
  /** Per-request timeout in ms (uploads of 200 MB files must fit in it). @default 600_000 */
  timeoutMs?: number | undefined;
}

/** The client to use: the given one, or a new official client with our retry defaults. */
export function createBatchClient(options: ClientOptions = {}): OpenAI {
  if (options.client) return options.client;
  return new OpenAI({
    apiKey: options.apiKey,
    baseURL: options.baseURL,
    maxRetries: options.maxRetries ?? 3,
    timeout: options.timeoutMs ?? 600_000,
  });
}

/** True when the client talks to OpenAI itself (which needs one model per batch). */
export function targetsOpenAi(client: OpenAI): boolean {
  try {
    return new URL(client.baseURL).hostname === 'api.openai.com';
  } catch {
    return false;
  }
}

/**
 * Creates a batch without ever creating it twice: a create whose answer was lost (timeout, reset,
 * 5xx) may have succeeded, and a blind retry would run — and bill — every line again. So the
 * first attempt is not retried by the SDK; on such a failure we look for our marker in the
 * metadata of recent batches before trying again.
 */
export async function createBatchOnce(
  client: OpenAI,
  params: BatchCreateParams,
  marker: Record<string, string>,
  createdAfterS: number,
): Promise<Batch> {
  try {
    return await client.batches.create(params, { maxRetries: 0 });
  } catch (err) {
    if (!(err instanceof APIConnectionError || err instanceof InternalServerError)) throw err;
    const found = await findBatchByMarker(client, marker, createdAfterS);
    return found ?? client.batches.create(params);
  }
}

/** The newest batch whose metadata holds every `marker` entry, looking back to `createdAfterS`. */
export async function findBatchByMarker(
  client: OpenAI,
  marker: Record<string, string>,
  createdAfterS: number,
): Promise<Batch | null> {
  const matches = (b: Batch): boolean =>
    Object.entries(marker).every(([k, v]) => b.metadata?.[k] === v);
  for await (const batch of client.batches.list({ limit: 100 })) {
    if (matches(batch)) return batch;
    if (batch.created_at < createdAfterS) break;
  }
  return null;
}

/** Streams the lines of a stored file (output or error file), without holding it whole. */
export async function* downloadLines(client: OpenAI, fileId: string): AsyncGenerator<string> {
  const response = await client.files.content(fileId);
  if (response.body === null) return;
  const stream = Readable.fromWeb(response.body as NodeReadableStream<Uint8Array>);
  // Output lines can be large (long completions, embeddings): allow up to 64 MiB per line.
  for await (const line of readJsonlLines(stream, 64 * 1024 * 1024)) {
    if (line.text !== null && line.text.trim() !== '') yield line.text;
  }
}
