/**
 * openbatch SDK: run batches through any OpenAI-compatible Batch API (OpenAI itself or an
 * openbatch server) with the official `openai` client — splitting, waiting, merging, retrying —
 * and get results in input order with a usage and cost table.
 *
 * ```ts
 * import { runBatch, formatUsageTable } from 'openbatch';
 * const { results, table } = await runBatch(
 *   [{ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Calculate: 1 + 1 =' }] }],
 *   { baseURL: 'http://localhost:8080/v1', batchSize: 2 },
 * );
 * console.log(formatUsageTable(table));
 * ```
 */
export { runBatch, type RunBatchOptions, type RunBatchResult } from './run-batch.ts';
export type { BatchRequest, RequestBody, RequestLine } from './request-lines.ts';
export type { ResultLine } from './job-results.ts';
export type { ClientOptions } from './batch-client.ts';
export type { WaitOptions } from './wait-job.ts';
export type { JobCounts, JobState, JobStatus, JobBatchStatus } from './job-status.ts';
export type { TokenUsage } from '../protocol/token-usage.ts';

export {
  buildUsageTable,
  formatUsageTable,
  type UsageTable,
  type UsageTableRow,
  type ModelUsage,
} from './usage-table.ts';
export {
  BATCH_PRICE_MULTIPLIER,
  loadPricingFile,
  priceForModel,
  type ModelPrice,
  type PricingOverrides,
} from './pricing.ts';

export {
  packDocuments,
  unpackResults,
  type DocumentResult,
  type PackDocument,
  type PackOptions,
  type PackedDocuments,
  type PackedGroup,
  type PackingTokens,
} from './pack-documents.ts';
export { runPackedDocuments, type PackedRunResult } from './run-packed.ts';

export {
  estimateBatch,
  DEFAULT_ASSUMED_MAX_TOKENS,
  type EstimateOptions,
  type EstimateReport,
  type ModelEstimate,
} from './estimate.ts';
export { fileLineSource, arrayLineSource, type LineSource } from './line-source.ts';
export {
  followBatchResults,
  fetchBatchResultsPage,
  type FollowResultsOptions,
} from './batch-results.ts';
export type { BatchResultsPage } from '../protocol/batch-results.ts';

export { InvalidLinesError, JobNotFoundError, InputChangedError } from './errors.ts';
export type { LineIssue } from './validate-lines.ts';
