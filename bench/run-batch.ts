import { createReadStream, writeFileSync } from 'node:fs';
import OpenAI from 'openai';

/** Uploads `lines`, creates a batch, waits for a terminal status; returns the batch and its timings. */
export async function runBatchThrough(
  baseURL: string,
  lines: object[],
  path: string,
  window = '24h',
): Promise<{ batch: OpenAI.Batches.Batch; startedMs: number; endedMs: number; client: OpenAI }> {
  writeFileSync(path, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  const client = new OpenAI({ apiKey: 'bench', baseURL, maxRetries: 0 });
  const startedMs = Date.now();
  const file = await client.files.create({ file: createReadStream(path), purpose: 'batch' });
  let batch = await client.batches.create({
    input_file_id: file.id,
    endpoint: '/v1/chat/completions',
    completion_window: window as '24h',
  });
  while (!['completed', 'failed', 'expired', 'cancelled'].includes(batch.status)) {
    await new Promise((r) => setTimeout(r, 100));
    batch = await client.batches.retrieve(batch.id);
  }
  return { batch, startedMs, endedMs: Date.now(), client };
}
