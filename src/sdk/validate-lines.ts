import { BATCH_ENDPOINTS, isBatchEndpoint, type BatchEndpoint } from '../protocol/endpoints.ts';
// The server's own per-line validator, so a file that passes here passes ingest too (same codes,
// same messages). Routing is the server's business: every model is accepted locally.
import { validateLine } from '../domain/line-validation.ts';

/** A problem with one input line, by 1-based physical line number. */
export interface LineIssue {
  line: number;
  code: string;
  message: string;
  param: string | null;
}

/** A line that passed every per-line check. */
export interface CheckedLine {
  custom_id: string;
  endpoint: BatchEndpoint;
  model: string;
  /** The request body as compact JSON (parse it only when needed: most callers do not). */
  bodyJson: string;
  embeddingInputs: number;
}

/** Per-line limits applied before upload. */
export interface LineCheckOptions {
  /** The batch endpoint every line must target; by default each line's own `url`. */
  endpoint?: BatchEndpoint | undefined;
  /** @default 1_048_576 */
  maxLineBytes?: number | undefined;
  /** @default 64 */
  maxJsonDepth?: number | undefined;
}

/** The verdict on one line. */
export type LineCheck = { ok: true; line: CheckedLine } | { ok: false; issue: LineIssue };

/** Validates one line of a batch input file exactly as an openbatch server would. */
export function checkLine(
  text: string | null,
  lineNo: number,
  options: LineCheckOptions = {},
): LineCheck {
  const endpoint = options.endpoint ?? endpointOf(text);
  const verdict = validateLine(text, lineNo, {
    endpoint,
    limits: {
      maxLineBytes: options.maxLineBytes ?? 1_048_576,
      maxJsonDepth: options.maxJsonDepth ?? 64,
    },
    routeModel: () => 'client',
  });
  if (!verdict.ok) {
    const { code, message, param } = verdict.error;
    return { ok: false, issue: { line: lineNo, code, message, param } };
  }
  const { custom_id, model, body, embeddingInputs } = verdict.line;
  return {
    ok: true,
    line: {
      custom_id,
      endpoint,
      model,
      bodyJson: body,
      embeddingInputs,
    },
  };
}

/** The line's own `url` when it names a batch endpoint; otherwise chat (the validator reports it). */
function endpointOf(text: string | null): BatchEndpoint {
  if (text === null || !text.includes('"url"')) return BATCH_ENDPOINTS[0];
  try {
    const url = (JSON.parse(text) as { url?: unknown }).url;
    return isBatchEndpoint(url) ? url : BATCH_ENDPOINTS[0];
  } catch {
    return BATCH_ENDPOINTS[0];
  }
}

/** The issue reported for a repeated custom_id (the server's own code and message). */
export function duplicateIssue(lineNo: number): LineIssue {
  return {
    line: lineNo,
    code: 'duplicate_custom_id',
    message:
      'The custom_id for this request is a duplicate of another request. The custom_id parameter must be unique for each request in a batch.',
    param: 'custom_id',
  };
}
