import type OpenAI from 'openai';
import type { BatchEndpoint } from '../protocol/endpoints.ts';
import {
  addUsage,
  emptyUsage,
  usageFromResponse,
  type TokenUsage,
} from '../protocol/token-usage.ts';
import { createBatchClient, targetsOpenAi, type ClientOptions } from './batch-client.ts';
import { fsJobStore, memoryJobStore, type JobStore } from './job-store.ts';
import { mergeJobResults, type ResultLine } from './job-results.ts';
import type { JobBatchStatus, JobCounts, JobStatus } from './job-status.ts';
import { arrayLineSource } from './line-source.ts';
import type { PricingOverrides } from './pricing.ts';
import { toRequestLines, type BatchRequest } from './request-lines.ts';
import { retryJob } from './retry-job.ts';
import { DEFAULT_SPLIT_LIMITS, type SplitLimits } from './split-plan.ts';
import { submitJob, type SubmitContext } from './submit-job.ts';
import { buildUsageTable, type UsageTable } from './usage-table.ts';
import { waitForJob, type WaitOptions } from './wait-job.ts';

/** Options of `runBatch`: where to send, how to split, how to wait, what to retry. */
export interface RunBatchOptions extends ClientOptions, WaitOptions {
  /** Endpoint of bare request bodies. @default '/v1/chat/completions' */
  endpoint?: BatchEndpoint | undefined;
  /** @default '24h' */
  completionWindow?: string | undefined;
  /** Lines per batch. @default 50_000 */
  batchSize?: number | undefined;
  /** Bytes per input file. @default 200 MB */
  maxBytesPerFile?: number | undefined;
  /** Embedding inputs per batch. @default 50_000 */
  maxEmbeddingInputs?: number | undefined;
  /** One model per batch. @default true for api.openai.com, false otherwise */
  oneModelPerFile?: boolean | undefined;
  /** Follow-up rounds for lines that failed, expired or were cancelled. @default 0 */
  retryFailed?: number | undefined;
  /** Resume the job with this id (or create it under this id). Implies a jobs directory. */
  jobId?: string | undefined;
  /** Keep job manifests here. @default memory only; `~/.openbatch/jobs` when `jobId` is set */
  jobsDir?: string | undefined;
  /** Prices that win over the maintained price data. */
  pricing?: PricingOverrides | undefined;
  /** Metadata added to every batch. */
  metadata?: Record<string, string> | undefined;
}

/** What `runBatch` returns: one result per request, in input order, plus totals. */
export interface RunBatchResult {
  jobId: string;
  /** `results[i]` answers `requests[i]`: a `response` (2xx or not) or an `error`. */
  results: ResultLine[];
  counts: JobCounts;
  /** Sum of the usage of every line's response. */
  usage: TokenUsage;
  usageByModel: Record<string, TokenUsage>;
  /** Tokens and dollars at standard and batch prices (`formatUsageTable` prints it). */
  table: UsageTable;
  batches: JobBatchStatus[];
}

/**
 * Submits `requests` through any OpenAI-compatible Batch API (split to fit its limits), waits,
 * optionally retries what failed, and returns the results in input order with usage and cost.
 */
export async function runBatch(
  requests: readonly BatchRequest[],
  options: RunBatchOptions = {},
): Promise<RunBatchResult> {
  const client = createBatchClient(options);
  const lines = toRequestLines(requests, options.endpoint ?? '/v1/chat/completions');
  const ctx: SubmitContext = {
    client,
    store: storeFor(options),
    source: arrayLineSource(lines.map((l) => JSON.stringify(l))),
    metadata: options.metadata,
  };
  const job = await submitJob({
    ...ctx,
    jobId: options.jobId,
    limits: splitLimits(options, client),
    completionWindow: options.completionWindow,
  });
  let status = await waitForJob(client, job, options);
  while (job.rounds.length - 1 < (options.retryFailed ?? 0)) {
    if ((await retryJob(ctx, job, status)) === null) break;
    status = await waitForJob(client, job, options);
  }
  const ids = (await ctx.store.loadIds(job.id)) ?? lines.map((l) => l.custom_id);
  const results = await resultsInOrder(client, status, ids);
  const modelOf = new Map(
    lines.map((l) => [l.custom_id, typeof l.body.model === 'string' ? l.body.model : 'unknown']),
  );
  const usageByModel = sumUsage(results, modelOf);
  const table = buildUsageTable(usageByModel, options.pricing);
  return {
    jobId: job.id,
    results,
    counts: status.counts,
    usage: table.usage,
    usageByModel: Object.fromEntries(usageByModel),
    table,
    batches: status.batches,
  };
}

function storeFor(options: RunBatchOptions): JobStore {
  return options.jobsDir !== undefined || options.jobId !== undefined
    ? fsJobStore(options.jobsDir)
    : memoryJobStore();
}

function splitLimits(options: RunBatchOptions, client: OpenAI): SplitLimits {
  return {
    maxLines: options.batchSize ?? DEFAULT_SPLIT_LIMITS.maxLines,
    maxBytes: options.maxBytesPerFile ?? DEFAULT_SPLIT_LIMITS.maxBytes,
    maxEmbeddingInputs: options.maxEmbeddingInputs ?? DEFAULT_SPLIT_LIMITS.maxEmbeddingInputs,
    oneModelPerFile: options.oneModelPerFile ?? targetsOpenAi(client),
  };
}

/** Every custom_id's latest result, in the order of `ids`. */
export async function resultsInOrder(
  client: OpenAI,
  status: JobStatus,
  ids: readonly string[],
): Promise<ResultLine[]> {
  const byId = new Map<string, ResultLine>();
  await mergeJobResults(client, status, ids, ({ line }) => void byId.set(line.custom_id, line));
  return ids.flatMap((id) => byId.get(id) ?? []);
}

/** Usage of every answered line, per model (the request's model, as priced). */
function sumUsage(
  results: readonly ResultLine[],
  modelOf: Map<string, string>,
): Map<string, TokenUsage> {
  const byModel = new Map<string, TokenUsage>();
  for (const r of results) {
    const usage = usageFromResponse(r.response?.body);
    if (!usage) continue;
    const model = modelOf.get(r.custom_id) ?? 'unknown';
    byModel.set(model, addUsage(byModel.get(model) ?? emptyUsage(), usage));
  }
  return byModel;
}
