import type { BatchEndpoint } from '../protocol/endpoints.ts';

/** A request body as the endpoint takes it (`{ model, messages, … }`). */
export type RequestBody = Record<string, unknown>;

/** One line of a batch input file. */
export interface RequestLine {
  custom_id: string;
  method: 'POST';
  url: string;
  body: RequestBody;
}

/** What `runBatch` accepts per request: a bare body, or a full or partial input line. */
export type BatchRequest = RequestBody | (Partial<RequestLine> & { body: RequestBody });

/** The custom_id given to the request at `index` when it has none. */
export function defaultCustomId(index: number): string {
  return `request-${index}`;
}

/**
 * Turns bodies or lines into full input lines: a missing `custom_id` becomes `request-<index>`
 * (its position in `requests`), a missing `url` the batch endpoint, a missing `method` POST.
 */
export function toRequestLines(
  requests: readonly BatchRequest[],
  endpoint: BatchEndpoint,
): RequestLine[] {
  return requests.map((request, index) => {
    if (!isLine(request)) {
      return { custom_id: defaultCustomId(index), method: 'POST', url: endpoint, body: request };
    }
    return {
      custom_id: typeof request.custom_id === 'string' ? request.custom_id : defaultCustomId(index),
      method: 'POST',
      url: typeof request.url === 'string' ? request.url : endpoint,
      body: request.body,
    };
  });
}

/** A line carries its body under `body` next to at least one line field; a bare body never does. */
function isLine(request: BatchRequest): request is Partial<RequestLine> & { body: RequestBody } {
  const body = (request as { body?: unknown }).body;
  return (
    typeof body === 'object' &&
    body !== null &&
    !Array.isArray(body) &&
    ('custom_id' in request || 'url' in request || 'method' in request)
  );
}
