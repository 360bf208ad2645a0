/** OpenAI error envelopes for the statuses the simulator answers. */

export interface ErrorSpec {
  message: string;
  type: string;
  param: string | null;
  code: string | null;
}

export function errorJson(spec: ErrorSpec): string {
  return JSON.stringify({ error: spec });
}

type FaultTemplate = readonly [
  message: (model: string) => string,
  type: string,
  code: string | null,
];

const FAULTS: ReadonlyMap<number, FaultTemplate> = new Map<number, FaultTemplate>([
  [400, [() => 'Simulated bad request', 'invalid_request_error', null]],
  [
    401,
    [
      () =>
        'Incorrect API key provided: sk-sim****. You can find your API key at https://platform.openai.com/account/api-keys.',
      'invalid_request_error',
      'invalid_api_key',
    ],
  ],
  [403, [() => 'Simulated forbidden request', 'invalid_request_error', null]],
  [
    404,
    [
      (model) => `The model \`${model}\` does not exist or you do not have access to it.`,
      'invalid_request_error',
      'model_not_found',
    ],
  ],
  [
    429,
    [
      (model) =>
        `Rate limit reached for ${model} in organization org-sim on requests per min (RPM): simulated. Please try again later.`,
      'requests',
      'rate_limit_exceeded',
    ],
  ],
  [
    503,
    [
      () => 'The engine is currently overloaded, please try again later.',
      'service_unavailable',
      null,
    ],
  ],
]);

const SERVER_ERROR: FaultTemplate = [
  () => 'The server had an error while processing your request. Sorry about that!',
  'server_error',
  null,
];

/** The envelope a scripted or injected fault with this status answers. */
export function faultError(status: number, model: string | null): ErrorSpec {
  const template =
    FAULTS.get(status) ??
    (status >= 500
      ? SERVER_ERROR
      : ([() => `Simulated error ${status}`, 'invalid_request_error', null] as const));
  const [message, type, code] = template;
  return spec(message(model ?? 'unknown'), type, code);
}

export function invalidUrl(method: string, path: string): ErrorSpec {
  return spec(`Invalid URL (${method} ${path})`, 'invalid_request_error', null);
}

export function invalidJson(): ErrorSpec {
  return spec(
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
    'invalid_request_error',
    null,
  );
}

export function missingParam(param: string): ErrorSpec {
  return {
    message: `Missing required parameter: '${param}'.`,
    type: 'invalid_request_error',
    param,
    code: 'missing_required_parameter',
  };
}

export function invalidParam(param: string, message: string): ErrorSpec {
  return { message, type: 'invalid_request_error', param, code: null };
}

export function overloaded(): ErrorSpec {
  return spec('Server overloaded', 'server_error', null);
}

function spec(message: string, type: string, code: string | null): ErrorSpec {
  return { message, type, param: null, code };
}
