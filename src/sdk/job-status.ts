import type OpenAI from 'openai';
import type { Batch } from 'openai/resources/batches';
import { isTerminalStatus } from '../protocol/batch-status.ts';
import { addUsage, emptyUsage, usageOfBatch, type TokenUsage } from '../protocol/token-usage.ts';
import type { JobBatch, JobManifest } from './job-store.ts';

/** One batch of a job as last retrieved. */
export interface JobBatchStatus extends JobBatch {
  status: string;
  request_counts: { total: number; completed: number; failed: number };
  output_file_id: string | null;
  error_file_id: string | null;
  /** Validation errors of a batch that failed before running (first few). */
  errors: { code: string; message: string; line: number | null }[];
  usage: TokenUsage;
}

/** Lines of the whole job. `failed` excludes lines a retry round sent again. */
export interface JobCounts {
  total: number;
  completed: number;
  failed: number;
  /** Neither completed nor failed yet (or expired/cancelled without a retry). */
  pending: number;
}

/** `submitting`: parts still to create; `in_progress`: batches running; `finished`: all terminal. */
export type JobState = 'submitting' | 'in_progress' | 'finished';

/** The job seen as one: aggregated counts and usage over every batch of every round. */
export interface JobStatus {
  job_id: string;
  state: JobState;
  counts: JobCounts;
  usage: TokenUsage;
  batches: JobBatchStatus[];
}

/** Retrieves the job's batches (only those not already terminal in `previous`) and aggregates. */
export async function fetchJobStatus(
  client: OpenAI,
  job: JobManifest,
  previous?: JobStatus,
): Promise<JobStatus> {
  const known = new Map(previous?.batches.map((b) => [b.id, b]));
  const batches = await Promise.all(
    job.batches.map(async (b) => {
      const seen = known.get(b.id);
      if (seen && isTerminalStatus(seen.status)) return seen;
      return toBatchStatus(b, await client.batches.retrieve(b.id));
    }),
  );
  return aggregate(job, batches);
}

function toBatchStatus(b: JobBatch, batch: Batch): JobBatchStatus {
  return {
    ...b,
    status: batch.status,
    request_counts: batch.request_counts ?? { total: 0, completed: 0, failed: 0 },
    output_file_id: batch.output_file_id ?? null,
    error_file_id: batch.error_file_id ?? null,
    errors: (batch.errors?.data ?? []).slice(0, 5).map((e) => ({
      code: e.code ?? 'error',
      message: e.message ?? '',
      line: e.line ?? null,
    })),
    usage: usageOfBatch(batch),
  };
}

/** Sums counts and usage; lines a retry round took over no longer count as failed. */
export function aggregate(job: JobManifest, batches: JobBatchStatus[]): JobStatus {
  const usage = emptyUsage();
  let completed = 0;
  let failed = 0;
  for (const b of batches) {
    completed += b.request_counts.completed;
    failed += b.request_counts.failed;
    addUsage(usage, b.usage);
  }
  failed -= job.rounds.reduce((n, r) => n + r.retried_failed, 0);
  const total = job.input.lines;
  const submitting = job.rounds.some(
    (r) => job.batches.filter((b) => b.round === r.round).length < r.parts_planned,
  );
  const running = batches.some((b) => !isTerminalStatus(b.status));
  return {
    job_id: job.id,
    state: submitting ? 'submitting' : running ? 'in_progress' : 'finished',
    counts: { total, completed, failed, pending: Math.max(0, total - completed - failed) },
    usage,
    batches,
  };
}
