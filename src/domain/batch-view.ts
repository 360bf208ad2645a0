import { toUnixSeconds } from '../lib/clock.ts';
import type { Batch } from '../protocol/batch.ts';
import type { FileObject } from '../protocol/file.ts';
import type { BatchRecord, FileRecord } from './records.ts';
import { nanoToUsd } from './price-book.ts';

const sec = (ms: number | null): number | null => (ms === null ? null : toUnixSeconds(ms));

/** The wire Batch object for a stored batch: every field present, null when unset. */
export function toBatchObject(b: BatchRecord): Batch {
  return {
    id: b.id,
    object: 'batch',
    endpoint: b.endpoint,
    model: b.model,
    errors: b.errors ? { object: 'list', data: b.errors } : null,
    input_file_id: b.input_file_id,
    completion_window: b.completion_window,
    status: b.status,
    output_file_id: b.output_file_id,
    error_file_id: b.error_file_id,
    created_at: toUnixSeconds(b.created_at_ms),
    in_progress_at: sec(b.in_progress_at_ms),
    expires_at: toUnixSeconds(b.expires_at_ms),
    finalizing_at: sec(b.finalizing_at_ms),
    completed_at: sec(b.completed_at_ms),
    failed_at: sec(b.failed_at_ms),
    expired_at: sec(b.expired_at_ms),
    cancelling_at: sec(b.cancelling_at_ms),
    cancelled_at: sec(b.cancelled_at_ms),
    request_counts: { total: b.total, completed: b.completed, failed: b.failed },
    usage: {
      input_tokens: b.usage.input_tokens,
      input_tokens_details: { cached_tokens: b.usage.cached_tokens },
      output_tokens: b.usage.output_tokens,
      output_tokens_details: { reasoning_tokens: b.usage.reasoning_tokens },
      total_tokens: b.usage.total_tokens,
      prompt_tokens: 0,
      completion_tokens: 0,
      prompt_tokens_details: null,
      completion_tokens_details: null,
    },
    metadata: b.metadata,
    ...costFields(b),
    // Extension (issue 10): how the lines run — realtime calls or the upstream's Batch API.
    ...(b.execution ? { execution: b.execution } : {}),
  };
}

/** The cost extensions (issue 13): `cost` and `cache_hits` always, the caps when set. */
function costFields(
  b: BatchRecord,
): Pick<Batch, 'cost' | 'cache_hits' | 'max_cost_usd' | 'max_error_rate'> {
  const cost = b.cost ?? { charged_nano: 0, standard_nano: 0 };
  return {
    cost: {
      currency: 'usd',
      charged: nanoToUsd(cost.charged_nano),
      at_standard_price: nanoToUsd(cost.standard_nano),
    },
    cache_hits: b.cache_hits ?? 0,
    ...(typeof b.max_cost_usd === 'number' ? { max_cost_usd: b.max_cost_usd } : {}),
    ...(typeof b.max_error_rate === 'number' ? { max_error_rate: b.max_error_rate } : {}),
  };
}

/** The wire File object for a stored file. */
export function toFileObject(f: FileRecord): FileObject {
  return {
    id: f.id,
    object: 'file',
    bytes: f.bytes,
    created_at: toUnixSeconds(f.created_at_ms),
    expires_at: sec(f.expires_at_ms),
    filename: f.filename,
    purpose: f.purpose,
    status: 'processed',
    status_details: null,
  };
}
