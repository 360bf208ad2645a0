import { describe, expect, it } from 'vitest';
import type { ClaimedItem, ItemOutcome } from '../../src/domain/records.ts';
import { decideFromError, decideFromResponse } from '../../src/engine/decide-outcome.ts';
import type { RetryPolicy } from '../../src/engine/retry-policy.ts';
import { classifyStatus } from '../../src/providers/classify.ts';
import { ProviderError, type UpstreamResponse } from '../../src/providers/provider.ts';

const NOW = 1_700_000_000_000;
const policy: RetryPolicy = {
  initialIntervalMs: 1_000,
  backoffCoefficient: 2,
  maximumIntervalMs: 60_000,
  maximumAttempts: 3,
  maximumRetryAfterMs: 600_000,
};

/** `attempts` counts the attempt being decided (the claim increments it before the call). */
const item = (attempts: number): ClaimedItem => ({
  chunk_id: 11,
  index: 0,
  batch_id: 'batch_x',
  custom_id: 'req-1',
  endpoint: '/v1/chat/completions',
  model: 'gpt-4o-mini',
  body: '{"model":"gpt-4o-mini"}',
  attempts,
  suspect: false,
  lease_gen: 4,
});

/**
 * An outcome in the flat shape these tests were written against: the recorded output or error
 * line is read back into status_code / request_id / response_body, or code / message.
 */
function view(o: ItemOutcome): Record<string, unknown> {
  if (!('record' in o)) {
    const { chunk_id, ...flat } = o as ItemOutcome & { index?: number };
    delete flat.index;
    return { ...flat, item_id: chunk_id };
  }
  const line = JSON.parse(o.record.text) as {
    response: { status_code: number; request_id: string; body: unknown } | null;
    error: { code: string; message: string } | null;
  };
  const { record: _record, chunk_id, index: _index, ...rest } = o;
  if (line.response) {
    return {
      ...rest,
      item_id: chunk_id,
      status_code: line.response.status_code,
      request_id: line.response.request_id,
      response_body: JSON.stringify(line.response.body),
    };
  }
  return { ...rest, item_id: chunk_id, code: line.error?.code, message: line.error?.message };
}

const errorBody = (message: string, type: string, code: string | null): string =>
  JSON.stringify({ error: { message, type, param: null, code } });

/** An upstream answer as the provider hands it over: the non-2xx status already classified. */
const res = (
  status: number,
  body: string,
  extra: UpstreamResponse['headers'] = {},
): UpstreamResponse => {
  const headers = { 'content-type': 'application/json', ...extra };
  return {
    status,
    headers,
    body,
    requestId: 'req_abc',
    failure: classifyStatus(status, headers, NOW),
  };
};

const chatBody = JSON.stringify({
  id: 'chatcmpl-1',
  object: 'chat.completion',
  choices: [],
  usage: {
    prompt_tokens: 12,
    completion_tokens: 7,
    total_tokens: 19,
    prompt_tokens_details: { cached_tokens: 4 },
    completion_tokens_details: { reasoning_tokens: 2 },
  },
});

describe('decideFromResponse', () => {
  it('records a 2xx as a succeeded response with its usage and request id', () => {
    const d = decideFromResponse(item(1), res(200, chatBody), policy, NOW);
    expect({ ...d, outcome: view(d.outcome) }).toEqual({
      outcome: {
        kind: 'response',
        item_id: 11,
        lease_gen: 4,
        succeeded: true,
        status_code: 200,
        request_id: 'req_abc',
        response_body: chatBody,
        usage: {
          input_tokens: 12,
          cached_tokens: 4,
          output_tokens: 7,
          reasoning_tokens: 2,
          total_tokens: 19,
        },
      },
      cooldownMs: null,
      maybePaid: false,
    });
  });

  it('reads responses-API usage names too', () => {
    const body = JSON.stringify({
      object: 'response',
      usage: { input_tokens: 5, output_tokens: 6, total_tokens: 11 },
    });
    const d = decideFromResponse(item(1), res(200, body), policy, NOW);
    expect(view(d.outcome)).toMatchObject({
      kind: 'response',
      succeeded: true,
      usage: { input_tokens: 5, output_tokens: 6, total_tokens: 11 },
    });
  });

  it('uses an empty request id when the upstream sent none', () => {
    const d = decideFromResponse(item(1), { ...res(200, chatBody), requestId: null }, policy, NOW);
    expect(view(d.outcome)).toMatchObject({ kind: 'response', request_id: '' });
  });

  it('makes a 400 final on the first attempt, keeping the upstream error body', () => {
    const body = errorBody('Simulated bad request', 'invalid_request_error', null);
    const d = decideFromResponse(item(1), res(400, body), policy, NOW);
    expect({ ...d, outcome: view(d.outcome) }).toEqual({
      outcome: {
        kind: 'response',
        item_id: 11,
        lease_gen: 4,
        succeeded: false,
        status_code: 400,
        request_id: 'req_abc',
        response_body: body,
        usage: null,
      },
      cooldownMs: null,
      maybePaid: false,
    });
  });

  it.each([401, 403, 404, 422])('makes a %i final', (status) => {
    const d = decideFromResponse(
      item(1),
      res(status, errorBody('no', 'invalid_request_error', null)),
      policy,
      NOW,
    );
    expect(view(d.outcome)).toMatchObject({
      kind: 'response',
      succeeded: false,
      status_code: status,
    });
  });

  it('retries a 500 below maximumAttempts without refunding the attempt, after a backoff delay', () => {
    const d = decideFromResponse(
      item(1),
      res(500, errorBody('boom', 'server_error', null)),
      policy,
      NOW,
    );
    expect(d.cooldownMs).toBeNull();
    expect(view(d.outcome)).toMatchObject({
      kind: 'retry',
      item_id: 11,
      lease_gen: 4,
      refund_attempt: false,
      last_error: 'upstream answered 500',
    });
    const wait = (d.outcome as { not_before_ms: number }).not_before_ms - NOW;
    expect(wait).toBeGreaterThanOrEqual(750);
    expect(wait).toBeLessThanOrEqual(1_000);
  });

  it.each([408, 409, 502, 503, 504])('retries a %i below maximumAttempts', (status) => {
    const d = decideFromResponse(
      item(2),
      res(status, errorBody('x', 'server_error', null)),
      policy,
      NOW,
    );
    expect(view(d.outcome)).toMatchObject({ kind: 'retry', refund_attempt: false });
  });

  it('makes a 500 final once maximumAttempts is reached', () => {
    const body = errorBody('boom', 'server_error', null);
    const d = decideFromResponse(item(3), res(500, body), policy, NOW);
    expect(view(d.outcome)).toEqual({
      kind: 'response',
      item_id: 11,
      lease_gen: 4,
      succeeded: false,
      status_code: 500,
      request_id: 'req_abc',
      response_body: body,
      usage: null,
    });
  });

  it("honours a 5xx's retry-after", () => {
    const d = decideFromResponse(
      item(1),
      res(503, errorBody('busy', 'server_error', null), { 'retry-after': '2' }),
      policy,
      NOW,
    );
    expect(view(d.outcome)).toMatchObject({
      kind: 'retry',
      not_before_ms: NOW + 2_000,
      refund_attempt: false,
    });
  });

  it('retries a 429 with the attempt refunded and the retry-after as upstream cooldown', () => {
    const body = errorBody('Rate limit reached', 'requests', 'rate_limit_exceeded');
    const d = decideFromResponse(
      item(1),
      res(429, body, { 'retry-after-ms': '1500', 'retry-after': '2' }),
      policy,
      NOW,
    );
    expect({ ...d, outcome: view(d.outcome) }).toEqual({
      outcome: {
        kind: 'retry',
        item_id: 11,
        lease_gen: 4,
        not_before_ms: NOW + 1_500,
        refund_attempt: true,
        last_error: 'upstream answered 429',
      },
      cooldownMs: 1_500,
      maybePaid: false,
    });
  });

  it('keeps retrying a 429 even at maximumAttempts (it does not use one up)', () => {
    const d = decideFromResponse(
      item(3),
      res(429, errorBody('slow', 'requests', 'rate_limit_exceeded'), { 'retry-after-ms': '200' }),
      policy,
      NOW,
    );
    expect(view(d.outcome)).toMatchObject({
      kind: 'retry',
      refund_attempt: true,
      not_before_ms: NOW + 200,
    });
    expect(d.cooldownMs).toBe(200);
  });

  it('backs off a 429 without retry-after and still cools the upstream down', () => {
    const d = decideFromResponse(
      item(1),
      res(429, errorBody('slow', 'requests', 'rate_limit_exceeded')),
      policy,
      NOW,
    );
    expect(view(d.outcome)).toMatchObject({ kind: 'retry', refund_attempt: true });
    expect(d.cooldownMs).toBeGreaterThanOrEqual(750);
    expect(d.cooldownMs).toBeLessThanOrEqual(1_000);
    expect((d.outcome as { not_before_ms: number }).not_before_ms).toBe(NOW + (d.cooldownMs ?? 0));
  });

  it('caps a huge retry-after at maximumRetryAfterMs', () => {
    const d = decideFromResponse(
      item(1),
      res(429, errorBody('slow', 'requests', null), { 'retry-after-ms': '99999999' }),
      policy,
      NOW,
    );
    expect(d.cooldownMs).toBe(600_000);
  });

  it('makes a 429 insufficient_quota final (waiting never clears it)', () => {
    const body = errorBody(
      'You exceeded your current quota, please check your plan and billing details.',
      'insufficient_quota',
      'insufficient_quota',
    );
    const d = decideFromResponse(item(1), res(429, body, { 'retry-after-ms': '200' }), policy, NOW);
    expect({ ...d, outcome: view(d.outcome) }).toEqual({
      outcome: {
        kind: 'response',
        item_id: 11,
        lease_gen: 4,
        succeeded: false,
        status_code: 429,
        request_id: 'req_abc',
        response_body: body,
        usage: null,
      },
      cooldownMs: null,
      maybePaid: false,
    });
  });

  it('makes a 500 with x-should-retry: false final on the first attempt', () => {
    const d = decideFromResponse(
      item(1),
      res(500, errorBody('boom', 'server_error', null), { 'x-should-retry': 'false' }),
      policy,
      NOW,
    );
    expect(view(d.outcome)).toMatchObject({ kind: 'response', succeeded: false, status_code: 500 });
    expect(d.cooldownMs).toBeNull();
  });

  it('makes a 429 with x-should-retry: false final', () => {
    const d = decideFromResponse(
      item(1),
      res(429, errorBody('slow', 'requests', null), {
        'x-should-retry': 'false',
        'retry-after-ms': '100',
      }),
      policy,
      NOW,
    );
    expect(view(d.outcome)).toMatchObject({ kind: 'response', succeeded: false, status_code: 429 });
    expect(d.cooldownMs).toBeNull();
  });

  it('retries a 400 when the upstream says x-should-retry: true', () => {
    const d = decideFromResponse(
      item(1),
      res(400, errorBody('later', 'invalid_request_error', null), { 'x-should-retry': 'true' }),
      policy,
      NOW,
    );
    expect(view(d.outcome)).toMatchObject({ kind: 'retry', refund_attempt: false });
  });

  it('retries a 200 whose body is not JSON, as an invalid response', () => {
    const d = decideFromResponse(item(1), res(200, '{"id":"chatcmpl-1","choi'), policy, NOW);
    expect(view(d.outcome)).toMatchObject({
      kind: 'retry',
      refund_attempt: false,
      last_error: expect.stringContaining('not JSON'),
    });
    expect(d.cooldownMs).toBeNull();
  });

  it('fails a 200 whose body is not JSON at maximumAttempts, with an error line', () => {
    const d = decideFromResponse(item(3), res(200, 'not json'), policy, NOW);
    expect(view(d.outcome)).toMatchObject({
      kind: 'error',
      item_id: 11,
      lease_gen: 4,
      code: 'upstream_error',
      message: expect.stringContaining('3 attempt(s)'),
    });
  });

  it("wraps a final non-JSON error body in OpenAI's error envelope", () => {
    const d = decideFromResponse(item(3), res(502, '<html>Bad Gateway</html>'), policy, NOW);
    expect(view(d.outcome)).toMatchObject({ kind: 'response', succeeded: false, status_code: 502 });
    const body = JSON.parse(view(d.outcome).response_body as string);
    expect(body).toEqual({
      error: {
        message: '<html>Bad Gateway</html>',
        type: 'upstream_error',
        param: null,
        code: null,
      },
    });
  });

  it('wraps an empty final error body with a message naming the status', () => {
    const d = decideFromResponse(item(1), res(404, ''), policy, NOW);
    const body = JSON.parse(view(d.outcome).response_body as string);
    expect(body.error.message).toBe('upstream answered 404');
  });
});

describe('decideFromError', () => {
  it('retries a connection error below maximumAttempts and flags it as maybe paid', () => {
    const d = decideFromError(
      item(1),
      new ProviderError('connection', 'upstream connection error (ECONNRESET)'),
      policy,
      NOW,
    );
    expect(view(d.outcome)).toMatchObject({
      kind: 'retry',
      item_id: 11,
      lease_gen: 4,
      refund_attempt: false,
      last_error: 'upstream connection error (ECONNRESET)',
    });
    expect(d.maybePaid).toBe(true);
    expect(d.cooldownMs).toBeNull();
    const wait = (d.outcome as { not_before_ms: number }).not_before_ms - NOW;
    expect(wait).toBeGreaterThanOrEqual(750);
    expect(wait).toBeLessThanOrEqual(1_000);
  });

  it('does not flag a request that never left as maybe paid', () => {
    const d = decideFromError(
      item(1),
      new ProviderError('connection', 'refused', { maybeSent: false }),
      policy,
      NOW,
    );
    expect(d.outcome.kind).toBe('retry');
    expect(d.maybePaid).toBe(false);
  });

  it('grows the delay with the attempt count', () => {
    const d = decideFromError(
      item(2),
      new ProviderError('timeout', 'timed out'),
      { ...policy, maximumAttempts: 10 },
      NOW,
    );
    const wait = (d.outcome as { not_before_ms: number }).not_before_ms - NOW;
    expect(wait).toBeGreaterThanOrEqual(1_500);
    expect(wait).toBeLessThanOrEqual(2_000);
  });

  it('ends in an upstream_error line at maximumAttempts', () => {
    const d = decideFromError(
      item(3),
      new ProviderError('timeout', 'upstream timeout error (UND_ERR_HEADERS_TIMEOUT)'),
      policy,
      NOW,
    );
    expect(view(d.outcome)).toEqual({
      kind: 'error',
      item_id: 11,
      lease_gen: 4,
      code: 'upstream_error',
      message:
        'The request failed after 3 attempt(s): upstream timeout error (UND_ERR_HEADERS_TIMEOUT).',
    });
    expect(d.maybePaid).toBe(true);
  });

  it('ends at once for a non-retryable error', () => {
    const d = decideFromError(
      item(1),
      new ProviderError('connection', 'nope', { shouldRetry: false }),
      policy,
      NOW,
    );
    expect(view(d.outcome)).toMatchObject({ kind: 'error', code: 'upstream_error' });
  });
});
