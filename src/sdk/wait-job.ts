import type OpenAI from 'openai';
import { systemClock } from '../lib/clock.ts';
import type { JobManifest } from './job-store.ts';
import { fetchJobStatus, type JobStatus } from './job-status.ts';

/** How to wait for a job (the shape of openai-node's `files.waitForProcessing`). */
export interface WaitOptions {
  /** Between two looks at the batches. @default 5_000 */
  pollIntervalMs?: number | undefined;
  /** Give up (throw) after this long. @default no limit */
  maxWaitMs?: number | undefined;
  /** Stops waiting (rejects with the signal's reason); the batches keep running. */
  signal?: AbortSignal | undefined;
  /** Called after every look, with the aggregate over all batches. */
  onProgress?: ((status: JobStatus) => void) | undefined;
}

/** Polls until every batch of the job is terminal and returns the final aggregate. */
export async function waitForJob(
  client: OpenAI,
  job: JobManifest,
  options: WaitOptions = {},
): Promise<JobStatus> {
  const pollMs = options.pollIntervalMs ?? 5_000;
  const deadline = options.maxWaitMs === undefined ? Infinity : Date.now() + options.maxWaitMs;
  let status: JobStatus | undefined;
  for (;;) {
    options.signal?.throwIfAborted();
    status = await fetchJobStatus(client, job, status);
    options.onProgress?.(status);
    if (status.state !== 'in_progress') return status;
    if (Date.now() + pollMs > deadline) {
      throw new Error(`job ${job.id} still in progress after ${options.maxWaitMs} ms`);
    }
    await systemClock.sleep(pollMs, options.signal);
  }
}
