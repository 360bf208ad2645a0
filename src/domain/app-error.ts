import { truncateEcho } from './echo-limits.ts';

/** Stable error codes; the HTTP layer maps each to a status in one place (api/error-response.ts). */
export const APP_ERROR_CODES = [
  'invalid_request',
  'unauthenticated',
  'forbidden',
  'not_found',
  'conflict',
  'unsupported_media_type',
  'rate_limited',
  'upstream_unavailable',
  'internal',
] as const;
export type AppErrorCode = (typeof APP_ERROR_CODES)[number];

export interface AppErrorDetails {
  /** The request field at fault, as OpenAI names it (`input_file_id`, `metadata.tags`). */
  param?: string | null;
  /** The `code` of OpenAI's envelope (`missing_required_parameter`, `invalid_value`, …). */
  wireCode?: string | null;
  cause?: unknown;
}

/** The one error type our code throws on purpose. Codes are the contract; messages are for people. */
export class AppError extends Error {
  override name = 'AppError';
  readonly code: AppErrorCode;
  readonly param: string | null;
  readonly wireCode: string | null;

  constructor(code: AppErrorCode, message: string, details: AppErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.param = details.param ?? null;
    this.wireCode = details.wireCode ?? null;
  }
}

export const badRequest = (message: string, details?: AppErrorDetails): AppError =>
  new AppError('invalid_request', message, details);

export const fileNotFound = (id: string): AppError =>
  new AppError('not_found', `No such File object: ${truncateEcho(id)}`, { param: 'id' });

export const batchNotFound = (id: string): AppError =>
  new AppError('not_found', `No batch found with id '${truncateEcho(id)}'.`, {
    wireCode: 'batch_not_found',
  });
