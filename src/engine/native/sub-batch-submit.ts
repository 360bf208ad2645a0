import { randomBytes } from 'node:crypto';
import type { BatchApi, UpstreamBatchInfo } from '../../providers/provider.ts';

/** Pages of the upstream's batch list searched for a marker before creating again. */
const MAX_SEARCH_PAGES = 20;

/** The metadata key that names a sub-batch's intent row on the upstream batch. */
export const MARKER_KEY = 'openbatch_sub';

/**
 * The upstream batch created for `marker` by an attempt whose answer was lost (a crash, a
 * timeout after the request went out), found by its metadata; null when there is none. Stops at
 * batches created before `sinceMs` (the list is newest first).
 */
export async function findByMarker(
  api: BatchApi,
  marker: string,
  sinceMs: number,
  signal: AbortSignal,
): Promise<UpstreamBatchInfo | null> {
  let after: string | null = null;
  for (let page = 0; page < MAX_SEARCH_PAGES; page++) {
    const list = await api.listBatches(after, signal);
    for (const batch of list.data) {
      if (batch.metadata?.[MARKER_KEY] === marker) return batch;
      const created = (batch as { created_at?: number }).created_at;
      if (typeof created === 'number' && created * 1000 < sinceMs) return null;
    }
    const last = list.data[list.data.length - 1];
    if (!list.has_more || !last) return null;
    after = last.id;
  }
  return null;
}

const TERMINAL = new Set(['completed', 'failed', 'expired', 'cancelled']);

export function isTerminal(status: string | null | undefined): boolean {
  return status !== null && status !== undefined && TERMINAL.has(status);
}

/** The first error of a failed upstream batch. */
export function firstError(batch: UpstreamBatchInfo): { code: string; message: string } {
  const e = batch.errors?.data?.[0];
  return {
    code: e?.code ?? 'upstream_batch_failed',
    message: e?.message ?? 'The upstream batch failed.',
  };
}

/** A sub-batch's marker: its intent row's key, and the upstream batch's metadata value. */
export function newMarker(): string {
  return `obsub_${randomBytes(12).toString('hex')}`;
}
