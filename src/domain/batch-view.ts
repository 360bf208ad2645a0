import { toUnixSeconds } from '../lib/clock.ts';
import type { Batch } from '../protocol/batch.ts';
import type { FileObject } from '../protocol/file.ts';
import type { BatchRecord, FileRecord } from './records.ts';

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
    // Extension (issue 10): how the lines run — realtime calls or the upstream's Batch API.
    ...(b.execution ? { execution: b.execution } : {}),
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
