import type { BatchStatus } from '../protocol/batch.ts';

/** Statuses from which a cancel moves the batch to `cancelling`. */
// A finalizing batch has run every line already: a cancel then changes nothing (200, as is).
export const CANCELLABLE_STATUSES: readonly BatchStatus[] = ['validating', 'in_progress'];

/** What a cancel request does to a batch in `status` (spec §4.3). */
export function cancelEffect(status: BatchStatus): 'start' | 'noop' | 'conflict' {
  if (CANCELLABLE_STATUSES.includes(status)) return 'start';
  if (status === 'cancelling' || status === 'cancelled' || status === 'finalizing') return 'noop';
  return 'conflict';
}
