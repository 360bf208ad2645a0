import { createReadStream } from 'node:fs';
import type OpenAI from 'openai';
import type { BatchCreateParams } from 'openai/resources/batches';
import type { BatchEndpoint } from '../protocol/endpoints.ts';
import { createBatchOnce, findBatchByMarker } from './batch-client.ts';
import { InputChangedError } from './errors.ts';
import type { JobBatch, JobManifest, JobStore } from './job-store.ts';
import { newJobId } from './job-store.ts';
import type { LineSource } from './line-source.ts';
import { planParts } from './plan-parts.ts';
import type { PlannedPart, SplitLimits } from './split-plan.ts';

/** Everything a submission round needs. */
export interface SubmitContext {
  client: OpenAI;
  store: JobStore;
  source: LineSource;
  /** Force one endpoint for every line (otherwise each line's `url`). */
  endpoint?: BatchEndpoint | undefined;
  /** Extra metadata for every batch (at most 14 keys: two are ours). */
  metadata?: Record<string, string> | undefined;
  /** Called after each batch is created. */
  onBatchCreated?: ((batch: JobBatch, job: JobManifest) => void) | undefined;
}

/** Options of `submitJob`. */
export interface SubmitJobOptions extends SubmitContext {
  /** Resume this job if the store knows it; otherwise create it under this id. */
  jobId?: string | undefined;
  limits: SplitLimits;
  /** @default '24h' */
  completionWindow?: string | undefined;
  /** Recorded so that retries can check the file did not change. */
  input?: { path: string; sha256: string } | undefined;
  /** Where the API key came from (recorded in the manifest; never the key). */
  apiKeySource?: string | undefined;
}

/**
 * Validates and splits the input, uploads each part, creates its batch and records the job
 * after every step. Calling it again with the same `jobId` continues an interrupted submission
 * without creating any batch twice.
 */
export async function submitJob(options: SubmitJobOptions): Promise<JobManifest> {
  const existing = options.jobId ? await options.store.load(options.jobId) : null;
  const recorded = existing?.input.sha256 ?? null;
  // Resuming re-plans the input: a different file would pair new lines with old batches.
  if (recorded !== null && options.input && recorded !== options.input.sha256) {
    throw new InputChangedError(
      `job ${existing?.id ?? ''} was submitted from another version of ${options.input.path}`,
    );
  }
  const job = existing ?? newManifest(options);
  try {
    if (!roundSubmitted(job, 0)) await submitRound(options, job, 0, { retriedFailed: 0 });
  } catch (err) {
    // Nothing was created: a job left in `submitting` would only become `last` and confuse.
    // A job named by the caller stays, so submitting again under its id resumes it.
    if (!existing && !options.jobId && job.batches.length === 0) await options.store.remove(job.id);
    throw err;
  }
  return job;
}

/** True when every planned part of `round` has its batch. */
export function roundSubmitted(job: JobManifest, round: number): boolean {
  const planned = job.rounds.find((r) => r.round === round)?.parts_planned;
  return planned !== undefined && job.batches.filter((b) => b.round === round).length >= planned;
}

/** Plans, uploads and creates the batches of one round; `include` selects lines (retries). */
export async function submitRound(
  ctx: SubmitContext,
  job: JobManifest,
  round: number,
  select: { include?: (customId: string) => boolean; retriedFailed: number },
): Promise<void> {
  const resuming = job.rounds.some((r) => r.round === round);
  const plan = await planParts(ctx.source, {
    limits: job.limits,
    endpoint: ctx.endpoint,
    include: select.include,
    filePrefix: `${job.id}-r${round}`,
  });
  try {
    if (round === 0) {
      job.input.lines = plan.ids.length;
      await ctx.store.saveIds(job.id, plan.ids);
    }
    if (!resuming)
      job.rounds.push({
        round,
        parts_planned: plan.parts.length,
        retried_failed: select.retriedFailed,
      });
    await ctx.store.save(job);
    for (const part of plan.parts) {
      if (job.batches.some((b) => b.round === round && b.part === part.part)) continue;
      const file = plan.files[part.part] ?? '';
      const batch = await createPart(ctx, job, round, part, file, resuming);
      job.batches.push(batch);
      await ctx.store.save(job);
      ctx.onBatchCreated?.(batch, job);
    }
  } finally {
    await plan.dispose();
  }
}

async function createPart(
  ctx: SubmitContext,
  job: JobManifest,
  round: number,
  part: PlannedPart,
  path: string,
  resuming: boolean,
): Promise<JobBatch> {
  const marker = { openbatch_job: job.id, openbatch_part: `${round}.${part.part}` };
  const createdAfterS = Math.floor(job.created_at_ms / 1000) - 60;
  const record = (id: string, input_file_id: string): JobBatch => ({
    id,
    input_file_id,
    round,
    part: part.part,
    endpoint: part.endpoint,
    model: part.model,
    lines: part.lines,
  });
  // A crash between "batch created" and "manifest saved" left a batch we must not create again.
  const found = resuming ? await findBatchByMarker(ctx.client, marker, createdAfterS) : null;
  if (found) return record(found.id, found.input_file_id);
  const file = await ctx.client.files.create({ file: createReadStream(path), purpose: 'batch' });
  const params = {
    input_file_id: file.id,
    endpoint: part.endpoint as BatchCreateParams['endpoint'],
    completion_window: job.completion_window as BatchCreateParams['completion_window'],
    metadata: { ...ctx.metadata, ...marker },
  };
  const batch = await createBatchOnce(ctx.client, params, marker, createdAfterS);
  return record(batch.id, file.id);
}

function newManifest(options: SubmitJobOptions): JobManifest {
  const nowMs = Date.now();
  return {
    version: 1,
    id: options.jobId ?? newJobId(nowMs),
    created_at_ms: nowMs,
    base_url: options.client.baseURL,
    api_key_source: options.apiKeySource ?? null,
    completion_window: options.completionWindow ?? '24h',
    input: {
      path: options.input?.path ?? null,
      sha256: options.input?.sha256 ?? null,
      lines: 0,
    },
    limits: options.limits,
    rounds: [],
    batches: [],
    last_counts: null,
  };
}
