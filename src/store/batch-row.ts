import type { BatchStatusTotals } from './store.ts';
import type { BatchStatus } from '../protocol/batch.ts';
import type { BatchRecord } from '../domain/records.ts';
import type { BatchExecution } from '../domain/batch-execution.ts';

/** A `batches` row as a store returns it. */
export interface BatchRow {
  id: string;
  seq: number;
  project: string;
  endpoint: string;
  input_file_id: string;
  completion_window: string;
  status: string;
  model: string | null;
  errors: string | null;
  output_file_id: string | null;
  error_file_id: string | null;
  created_at_ms: number;
  in_progress_at_ms: number | null;
  expires_at_ms: number;
  finalizing_at_ms: number | null;
  completed_at_ms: number | null;
  failed_at_ms: number | null;
  expired_at_ms: number | null;
  cancelling_at_ms: number | null;
  cancelled_at_ms: number | null;
  total: number;
  completed: number;
  failed: number;
  input_tokens: number;
  cached_tokens: number;
  output_tokens: number;
  reasoning_tokens: number;
  total_tokens: number;
  metadata: string | null;
  output_expires_after_seconds: number | null;
  cost_charged_nano?: number;
  cost_standard_nano?: number;
  cache_hits?: number;
  max_cost_usd?: number | null;
  max_error_rate?: number | null;
  stop_code?: string | null;
  execution?: string | null;
}

/** Columns the engine keeps on the batch row that the batch object does not show. */
const ENGINE_COLUMNS = [
  'output_bytes',
  'error_bytes',
  'expired_lines',
  'reserved_output_file_id',
  'reserved_error_file_id',
];

export function rowToBatch(stored: BatchRow): BatchRecord {
  const row = { ...stored } as BatchRow & Record<string, unknown>;
  for (const column of ENGINE_COLUMNS) delete row[column];
  const {
    seq: _seq,
    input_tokens,
    cached_tokens,
    output_tokens,
    reasoning_tokens,
    total_tokens,
    cost_charged_nano,
    cost_standard_nano,
    ...rest
  } = row;
  return {
    ...rest,
    cost: { charged_nano: cost_charged_nano ?? 0, standard_nano: cost_standard_nano ?? 0 },
    status: row.status as BatchStatus,
    errors: row.errors === null ? null : (JSON.parse(row.errors) as BatchRecord['errors']),
    metadata: row.metadata === null ? null : (JSON.parse(row.metadata) as Record<string, string>),
    execution: row.execution ? (JSON.parse(row.execution) as BatchExecution) : null,
    usage: { input_tokens, cached_tokens, output_tokens, reasoning_tokens, total_tokens },
  };
}

export function batchToRow(b: BatchRecord, seq: number): BatchRow {
  const { usage, cost: _cost, execution: _execution, ...rest } = b; // execution is set by the engine later
  return {
    ...rest,
    seq,
    errors: b.errors === null ? null : JSON.stringify(b.errors),
    metadata: b.metadata === null ? null : JSON.stringify(b.metadata),
    ...usage,
  };
}

/** A `GROUP BY status` row of batch counters (any store) as BatchStatusTotals. */
export function rowToStatusTotals(
  r: Omit<BatchStatusTotals, 'usage'> & Record<string, number>,
): BatchStatusTotals {
  return {
    status: r.status,
    batches: r.batches,
    total: r.total,
    completed: r.completed,
    failed: r.failed,
    usage: {
      input_tokens: r.input_tokens!,
      cached_tokens: r.cached_tokens!,
      output_tokens: r.output_tokens!,
      reasoning_tokens: r.reasoning_tokens!,
      total_tokens: r.total_tokens!,
    },
  };
}

/** The query behind BatchStatusTotals (the same SQL on SQLite and PostgreSQL). */
export const STATUS_TOTALS_SQL = `SELECT status, COUNT(*) AS batches, SUM(total) AS total,
    SUM(completed) AS completed, SUM(failed) AS failed, SUM(input_tokens) AS input_tokens,
    SUM(cached_tokens) AS cached_tokens, SUM(output_tokens) AS output_tokens,
    SUM(reasoning_tokens) AS reasoning_tokens, SUM(total_tokens) AS total_tokens
  FROM batches GROUP BY status`;
