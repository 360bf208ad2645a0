import { describe, it, expect } from 'vitest';
import { parseCreateBatchParams } from '../../src/domain/create-batch-params.ts';
import { AppError } from '../../src/domain/app-error.ts';
import { BATCH_ENDPOINTS } from '../../src/protocol/endpoints.ts';

const VALID = {
  input_file_id: 'file-abc',
  endpoint: '/v1/chat/completions',
  completion_window: '24h',
};

function rejection(body: unknown): AppError {
  try {
    parseCreateBatchParams(body);
  } catch (err) {
    if (err instanceof AppError) return err;
    throw err;
  }
  throw new Error(`${JSON.stringify(body)} was accepted`);
}

const UNPARSABLE =
  "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)";

describe('parseCreateBatchParams', () => {
  it('parses a minimal valid request', () => {
    expect(parseCreateBatchParams(VALID)).toEqual({
      input_file_id: 'file-abc',
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
      completionWindowMs: 86_400_000,
      metadata: null,
      outputExpiresAfterSeconds: null,
      maxCostUsd: null,
      maxErrorRate: null,
    });
  });

  it('parses the cost extensions max_cost_usd and max_error_rate (issue 13)', () => {
    const parsed = parseCreateBatchParams({ ...VALID, max_cost_usd: 2.5, max_error_rate: 0.1 });
    expect(parsed).toMatchObject({ maxCostUsd: 2.5, maxErrorRate: 0.1 });
    expect(() => parseCreateBatchParams({ ...VALID, max_error_rate: 1.5 })).toThrow(
      /max_error_rate/,
    );
    expect(() => parseCreateBatchParams({ ...VALID, max_cost_usd: '3' })).toThrow(/a number/);
  });

  it('parses metadata, output_expires_after and an extended completion window', () => {
    const parsed = parseCreateBatchParams({
      ...VALID,
      completion_window: '1h30m',
      metadata: { job: 'nightly', empty: '' },
      output_expires_after: { anchor: 'created_at', seconds: 7200 },
    });
    expect(parsed.completionWindowMs).toBe(5_400_000);
    expect(parsed.completion_window).toBe('1h30m');
    expect(parsed.metadata).toEqual({ job: 'nightly', empty: '' });
    expect(parsed.outputExpiresAfterSeconds).toBe(7200);
    expect(
      parseCreateBatchParams({ ...VALID, metadata: null, output_expires_after: null }).metadata,
    ).toBeNull();
  });

  it('accepts every batch endpoint', () => {
    for (const endpoint of BATCH_ENDPOINTS)
      expect(parseCreateBatchParams({ ...VALID, endpoint }).endpoint).toBe(endpoint);
  });

  it.each(['input_file_id', 'endpoint', 'completion_window'])('reports a missing %s', (key) => {
    for (const value of [undefined, null]) {
      const body: Record<string, unknown> = { ...VALID, [key]: value };
      if (value === undefined) delete body[key];
      const err = rejection(body);
      expect(err.code).toBe('invalid_request');
      expect(err.message).toBe(`Missing required parameter: '${key}'.`);
      expect(err.param).toBe(key);
      expect(err.wireCode).toBe('missing_required_parameter');
    }
  });

  it('reports a non-string required field as invalid_type', () => {
    const err = rejection({ ...VALID, input_file_id: 42 });
    expect(err.message).toBe(
      "Invalid type for 'input_file_id': expected a string, but got an integer instead.",
    );
    expect(err.param).toBe('input_file_id');
    expect(err.wireCode).toBe('invalid_type');
    expect(rejection({ ...VALID, endpoint: ['/v1/embeddings'] }).message).toBe(
      "Invalid type for 'endpoint': expected a string, but got an array instead.",
    );
    expect(rejection({ ...VALID, completion_window: 24 }).param).toBe('completion_window');
  });

  it("rejects an unknown endpoint with OpenAI's wording", () => {
    const err = rejection({ ...VALID, endpoint: '/v1/invalid/endpoint' });
    expect(err.param).toBe('endpoint');
    expect(err.wireCode).toBe('invalid_value');
    expect(err.message).toBe(
      "Invalid value: '/v1/invalid/endpoint'. Supported values are: '/v1/chat/completions', '/v1/embeddings', '/v1/completions', '/v1/responses', and '/v1/moderations'.",
    );
  });

  it.each(['5s', '169h', '', 'abc', '168h0m1s'])(
    'rejects completion_window %j',
    (completion_window) => {
      const err = rejection({ ...VALID, completion_window });
      expect(err.param).toBe('completion_window');
      expect(err.wireCode).toBe('invalid_value');
    },
  );

  it('rejects a body that is not a JSON object', () => {
    for (const body of [null, [], 'text', 42]) expect(rejection(body).message).toBe(UNPARSABLE);
  });

  it('rejects unknown arguments', () => {
    const err = rejection({ ...VALID, model: 'gpt-4o' });
    expect(err.message).toBe('Unrecognized request argument supplied: model');
  });

  it("reports a non-string metadata value with OpenAI's invalid_type message", () => {
    const err = rejection({ ...VALID, metadata: { tags: ['a', 'b'] } });
    expect(err.message).toBe(
      "Invalid type for 'metadata.tags': expected a string, but got an array instead.",
    );
    expect(err.param).toBe('metadata.tags');
    expect(err.wireCode).toBe('invalid_type');
    expect(rejection({ ...VALID, metadata: { n: 1.5 } }).message).toBe(
      "Invalid type for 'metadata.n': expected a string, but got a decimal instead.",
    );
    expect(rejection({ ...VALID, metadata: { b: true } }).message).toContain(
      'but got a boolean instead',
    );
    expect(rejection({ ...VALID, metadata: { o: null } }).message).toContain(
      'but got null instead',
    );
  });

  it('rejects metadata that is not an object', () => {
    for (const metadata of ['x', ['a'], 3]) {
      const err = rejection({ ...VALID, metadata });
      expect(err.param).toBe('metadata');
      expect(err.wireCode).toBe('invalid_type');
    }
  });

  it('enforces 16 pairs, 64-character keys and 512-character values', () => {
    const pairs = (n: number) =>
      Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 'v']));
    expect(parseCreateBatchParams({ ...VALID, metadata: pairs(16) }).metadata).toEqual(pairs(16));
    expect(rejection({ ...VALID, metadata: pairs(17) })).toMatchObject({
      param: 'metadata',
      wireCode: 'object_above_max_properties',
    });

    expect(
      parseCreateBatchParams({ ...VALID, metadata: { ['k'.repeat(64)]: 'v' } }).metadata,
    ).toEqual({ ['k'.repeat(64)]: 'v' });
    expect(rejection({ ...VALID, metadata: { ['k'.repeat(65)]: 'v' } })).toMatchObject({
      param: 'metadata',
      wireCode: 'string_above_max_length',
    });

    expect(
      parseCreateBatchParams({ ...VALID, metadata: { key: 'v'.repeat(512) } }).metadata?.key,
    ).toHaveLength(512);
    expect(rejection({ ...VALID, metadata: { key: 'v'.repeat(513) } })).toMatchObject({
      param: 'metadata.key',
      wireCode: 'string_above_max_length',
    });
  });

  it('validates output_expires_after', () => {
    expect(
      rejection({ ...VALID, output_expires_after: { anchor: 'completed_at', seconds: 3600 } })
        .param,
    ).toBe('output_expires_after.anchor');
    for (const seconds of [3599, 2_592_001, 3600.5, '3600', undefined]) {
      expect(
        rejection({ ...VALID, output_expires_after: { anchor: 'created_at', seconds } }).param,
      ).toBe('output_expires_after.seconds');
    }
    expect(
      parseCreateBatchParams({
        ...VALID,
        output_expires_after: { anchor: 'created_at', seconds: 2_592_000 },
      }).outputExpiresAfterSeconds,
    ).toBe(2_592_000);
    expect(rejection({ ...VALID, output_expires_after: 3600 }).param).toBe('output_expires_after');
  });
});
