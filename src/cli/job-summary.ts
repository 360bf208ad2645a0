import type { JobStatus } from '../sdk/job-status.ts';
import { costOf, priceForModel, type PricingOverrides } from '../sdk/pricing.ts';
import type { JobManifest } from '../sdk/job-store.ts';
import type { ProgressSnapshot } from './progress-display.ts';

/** A progress snapshot of a job; cost at batch prices when the job has one priced model. */
export function progressOf(
  job: JobManifest,
  status: JobStatus,
  pricing: PricingOverrides = {},
): ProgressSnapshot {
  const models = new Set(job.batches.map((b) => b.model));
  const model = models.size === 1 ? [...models][0] : null;
  const price = model ? priceForModel(model, pricing) : null;
  return {
    done: status.counts.completed + status.counts.failed,
    failed: status.counts.failed,
    total: status.counts.total,
    tokens: status.usage.total_tokens,
    costUsd: price ? costOf(status.usage, price).batch.total : null,
  };
}

/** Human lines describing a job: totals, then one line per batch. */
export function describeStatus(status: JobStatus): string {
  const c = status.counts;
  const lines = [
    `job ${status.job_id}: ${status.state} — ${c.completed.toLocaleString('en-US')} completed, ${c.failed.toLocaleString('en-US')} failed, ${c.pending.toLocaleString('en-US')} pending of ${c.total.toLocaleString('en-US')} lines; ${status.usage.total_tokens.toLocaleString('en-US')} tokens`,
  ];
  for (const b of status.batches) {
    const rc = b.request_counts;
    const errors = b.errors.length > 0 ? ` (${b.errors[0]?.message ?? ''})` : '';
    lines.push(
      `  ${b.id}  round ${b.round} part ${b.part}  ${b.status}  ${rc.completed}/${rc.total} completed, ${rc.failed} failed${errors}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** True when every batch ended `completed` (lines may still have failed individually). */
export function allCompleted(status: JobStatus): boolean {
  return status.state === 'finished' && status.batches.every((b) => b.status === 'completed');
}
