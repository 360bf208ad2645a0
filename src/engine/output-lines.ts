import type { BatchOutputLine } from '../protocol/batch.ts';
import { RawJson, toPythonJson } from '../lib/python-json.ts';
import { newBatchRequestId } from '../domain/ids.ts';
import type { RecordedLine } from '../domain/records.ts';

export const EXPIRED_ERROR = {
  code: 'batch_expired',
  message: 'This request could not be executed before the completion window expired.',
};
export const CANCELLED_ERROR = {
  code: 'batch_cancelled',
  message: 'This request could not be executed before the batch was cancelled.',
};

/**
 * An answer from the upstream as an output line (success) or error line (anything else). The body is
 * valid JSON (decide-outcome checks, or wraps a non-JSON error body) and is re-spaced as text,
 * never parsed and rebuilt, so numbers keep their exact digits.
 */
export function responseLine(
  batchId: string,
  customId: string,
  answer: { succeeded: boolean; status_code: number; request_id: string; body: string },
  nowMs: number,
): RecordedLine {
  const line: BatchOutputLine = {
    id: newBatchRequestId(nowMs),
    custom_id: customId,
    response: {
      status_code: answer.status_code,
      request_id: answer.request_id,
      body: new RawJson(answer.body),
    },
    error: null,
  };
  const file = answer.succeeded ? 'output' : 'error';
  return { batch_id: batchId, file, text: toPythonJson(line) + '\n' };
}

/** A line that got no answer: an error line with `code` and `message`. */
export function errorLine(
  batchId: string,
  customId: string,
  error: { code: string; message: string },
  nowMs: number,
): RecordedLine {
  const line: BatchOutputLine = {
    id: newBatchRequestId(nowMs),
    custom_id: customId,
    response: null,
    error: { code: error.code, message: error.message },
  };
  return { batch_id: batchId, file: 'error', text: toPythonJson(line) + '\n' };
}

/** A line the batch stopped before it ran to an answer (`batch_cancelled` / `batch_expired`). */
export function notRunLine(
  batchId: string,
  customId: string,
  state: 'cancelled' | 'expired',
  nowMs: number,
  /** A batch the engine stopped early says why (`spend_limit_reached`…) instead of `batch_cancelled`. */
  stopped?: { code: string; message: string },
): RecordedLine {
  const error = state === 'expired' ? EXPIRED_ERROR : (stopped ?? CANCELLED_ERROR);
  return errorLine(batchId, customId, error, nowMs);
}
