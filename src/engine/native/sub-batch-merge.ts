import type { BatchRecord, ItemOutcome } from '../../domain/records.ts';
import { usageFromResponse } from '../../protocol/token-usage.ts';
import type { NativeSubRecord } from '../../store/store.ts';
import { errorLine, responseLine } from '../output-lines.ts';

/** Codes of upstream error lines that mean "never ran": the line stays open (rerun or stop). */
const NOT_RUN = new Set(['batch_expired', 'batch_cancelled']);

interface UpstreamLine {
  custom_id?: unknown;
  response?: { status_code?: unknown; request_id?: unknown; body?: unknown } | null;
  error?: { code?: unknown; message?: unknown } | null;
}

/**
 * A sub-batch's output and error files as outcomes for the user's batch, each under the line's
 * own chunk key (fenced by the lease_gen recorded with the sub-batch). Lines the upstream did not
 * run, and lines it answered twice or never named, give no outcome.
 */
export function outcomesOf(
  sub: NativeSubRecord,
  batch: BatchRecord,
  files: readonly string[],
  nowMs: number,
): ItemOutcome[] {
  const keys = new Map(sub.keys.map((k) => [k[3], k]));
  const outcomes: ItemOutcome[] = [];
  for (const text of files)
    for (const raw of text.split('\n')) {
      if (raw.trim() === '') continue;
      const line = JSON.parse(raw) as UpstreamLine;
      const key = typeof line.custom_id === 'string' ? keys.get(line.custom_id) : undefined;
      if (!key) continue;
      keys.delete(line.custom_id as string);
      const [chunk_id, lease_gen, index, customId] = key;
      const at = { chunk_id, lease_gen, index };
      if (line.response) {
        const status = Number(line.response.status_code);
        const succeeded = status >= 200 && status < 300;
        const answer = {
          succeeded,
          status_code: status,
          request_id: typeof line.response.request_id === 'string' ? line.response.request_id : '',
          body: JSON.stringify(line.response.body ?? null),
        };
        outcomes.push({
          ...at,
          kind: 'response',
          succeeded,
          usage: succeeded ? usageFromResponse(line.response.body) : null,
          record: responseLine(batch.id, customId, answer, nowMs),
        });
      } else if (
        line.error &&
        !(typeof line.error.code === 'string' && NOT_RUN.has(line.error.code))
      ) {
        const message = typeof line.error.message === 'string' ? line.error.message : '';
        const error = {
          code: typeof line.error.code === 'string' ? line.error.code : 'upstream_error',
          message,
        };
        outcomes.push({
          ...at,
          kind: 'error',
          record: errorLine(batch.id, customId, error, nowMs),
        });
      } else keys.set(customId, key); // not run: stays open
    }
  return outcomes;
}

/** Every line of a sub-batch the upstream refused as a whole (not a quota): an error line each. */
export function failedOutcomes(
  sub: NativeSubRecord,
  batch: BatchRecord,
  error: { code: string; message: string },
  nowMs: number,
): ItemOutcome[] {
  return sub.keys.map(([chunk_id, lease_gen, index, customId]) => ({
    chunk_id,
    lease_gen,
    index,
    kind: 'error' as const,
    record: errorLine(batch.id, customId, error, nowMs),
  }));
}
