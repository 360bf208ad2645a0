import type { BatchExecution } from './batch-execution.ts';
import { z } from 'zod';

export const BATCH_STATUSES = [
  'validating',
  'failed',
  'in_progress',
  'finalizing',
  'completed',
  'expired',
  'cancelling',
  'cancelled',
] as const;
export type BatchStatus = (typeof BATCH_STATUSES)[number];

export interface BatchError {
  code: string;
  message: string;
  param: string | null;
  line: number | null;
}

export interface BatchUsage {
  input_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
  // Legacy keys the real API still sends (spec §4.2); SDKs ignore them.
  prompt_tokens: 0;
  completion_tokens: 0;
  prompt_tokens_details: null;
  completion_tokens_details: null;
}

/** OpenAI's Batch object: every field present, `null` when unset. */
export interface Batch {
  id: string;
  object: 'batch';
  endpoint: string;
  model: string | null;
  errors: { object: 'list'; data: BatchError[] } | null;
  input_file_id: string;
  completion_window: string;
  status: BatchStatus;
  output_file_id: string | null;
  error_file_id: string | null;
  created_at: number;
  in_progress_at: number | null;
  expires_at: number | null;
  finalizing_at: number | null;
  completed_at: number | null;
  failed_at: number | null;
  expired_at: number | null;
  cancelling_at: number | null;
  cancelled_at: number | null;
  request_counts: { total: number; completed: number; failed: number };
  usage: BatchUsage;
  metadata: Record<string, string> | null;
  /** openbatch extension: realtime or native (the upstream's Batch API), and why. */
  execution?: BatchExecution;
  /** Extension: what the answers cost so far, in USD (live while the batch runs). */
  cost?: BatchCost;
  /** Extension: lines answered from the response cache (no upstream call, no cost). */
  cache_hits?: number;
  /** Extension: the caps the batch was created with (absent when none). */
  max_cost_usd?: number;
  max_error_rate?: number;
}

/** Extension `cost` of a batch: charged at the price its lines ran at, and at the standard one. */
export interface BatchCost {
  currency: 'usd';
  charged: number;
  at_standard_price: number;
}

/** Query of GET /v1/batches. */
export const batchListQuerySchema = z.object({
  after: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
});
export type BatchListQuery = z.infer<typeof batchListQuerySchema>;

/** One line of an output or error file. */
export interface BatchOutputLine {
  id: string;
  custom_id: string;
  response: { status_code: number; request_id: string; body: unknown } | null;
  error: { code: string; message: string } | null;
}
