import OpenAI from 'openai';
import type { Batch } from 'openai/resources/batches';
import { targetsOpenAi } from './batch-client.ts';
import type { JobBatch, JobManifest } from './job-store.ts';
import type { JobStatus } from './job-status.ts';

/**
 * Asks an openbatch server to retry (POST /v1/batches/{id}/retry, an extension): each batch of
 * the job's latest round that has error lines gets a follow-up batch of exactly those lines,
 * made on the server from its own files, so nothing is uploaded again. Returns the follow-up
 * batches as round `round`, or null when the target cannot do it (OpenAI, other servers) or
 * when the lines to retry are not exactly the latest round's error lines (an interrupted round):
 * the caller then resubmits from the input file.
 */
export async function retryOnServer(
  client: OpenAI,
  job: JobManifest,
  status: JobStatus,
  round: number,
  linesToRetry: number,
): Promise<JobBatch[] | null> {
  if (targetsOpenAi(client)) return null;
  const latest = Math.max(...job.batches.map((b) => b.round));
  const sources = status.batches.filter((b) => b.round === latest && b.error_file_id !== null);
  const errorLines = sources.reduce(
    (n, b) => n + b.request_counts.total - b.request_counts.completed,
    0,
  );
  if (sources.length === 0 || errorLines !== linesToRetry) return null;
  const created: JobBatch[] = [];
  for (const source of sources) {
    let batch: Batch;
    try {
      batch = await client.post<Batch>(`/batches/${source.id}/retry`, {
        body: {},
        // A retry cut short and run again gets the same follow-ups back.
        headers: { 'Idempotency-Key': `${job.id}.r${round}.p${source.part}` },
      });
    } catch (err) {
      if (created.length === 0 && unsupported(err)) return null;
      throw err;
    }
    created.push({
      id: batch.id,
      input_file_id: batch.input_file_id,
      round,
      part: source.part,
      endpoint: source.endpoint,
      model: source.model,
      lines: source.request_counts.total - source.request_counts.completed,
    });
  }
  return created;
}

/** The server has no such route (404 Invalid URL, 405): not an openbatch server, or an older one. */
function unsupported(err: unknown): boolean {
  return err instanceof OpenAI.APIError && (err.status === 404 || err.status === 405);
}
