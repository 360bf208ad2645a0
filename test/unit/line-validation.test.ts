import { describe, it, expect } from 'vitest';
import {
  FORBIDDEN_BODY_KEYS,
  validateLine,
  type LineContext,
  type LineVerdict,
} from '../../src/domain/line-validation.ts';
import type { BatchEndpoint } from '../../src/protocol/endpoints.ts';

const SERVED = new Set(['gpt-4o-mini', 'text-embedding-3-small', 'omni-moderation-latest']);

function ctx(endpoint: BatchEndpoint = '/v1/chat/completions', routed: string[] = []): LineContext {
  return {
    endpoint,
    limits: { maxLineBytes: 4096, maxJsonDepth: 8 },
    routeModel: (model) => {
      routed.push(model);
      return SERVED.has(model) ? 'sim' : null;
    },
  };
}

const chat = (
  overrides: Record<string, unknown> = {},
  body: Record<string, unknown> = {},
): Record<string, unknown> => ({
  custom_id: 'req-1',
  method: 'POST',
  url: '/v1/chat/completions',
  body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], ...body },
  ...overrides,
});

/** Validates an object line (or raw text) at line 7 and returns the error, failing if it passed. */
function errorOf(
  line: Record<string, unknown> | string | null,
  c: LineContext = ctx(),
  lineNo = 7,
) {
  const text = line === null || typeof line === 'string' ? line : JSON.stringify(line);
  const verdict: LineVerdict = validateLine(text, lineNo, c);
  if (verdict.ok) throw new Error(`expected a failure, got ${JSON.stringify(verdict.line)}`);
  return verdict.error;
}

function okOf(line: Record<string, unknown> | string, c: LineContext = ctx()) {
  const verdict = validateLine(typeof line === 'string' ? line : JSON.stringify(line), 1, c);
  if (!verdict.ok) throw new Error(`expected success, got ${JSON.stringify(verdict.error)}`);
  return verdict.line;
}

describe('validateLine', () => {
  it('accepts a valid chat line and returns its routing facts and the compact body', () => {
    const text =
      '{ "custom_id": "req-1", "method": "POST", "url": "/v1/chat/completions",\t"body": { "model": "gpt-4o-mini", "messages": [ {"role": "user", "content": "hi"} ] } }';
    const line = okOf(text);
    expect(line).toEqual({
      custom_id: 'req-1',
      model: 'gpt-4o-mini',
      upstream: 'sim',
      body: '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}',
      embeddingInputs: 0,
    });
  });

  it('accepts stream: false', () => {
    expect(okOf(chat({}, { stream: false })).custom_id).toBe('req-1');
  });

  it('reports an over-long line (text null) as invalid_request at its line', () => {
    expect(errorOf(null)).toEqual({
      code: 'invalid_request',
      message: 'This line exceeds the maximum line size of 4096 bytes.',
      param: null,
      line: 7,
    });
  });

  it('refuses a line nested deeper than maxJsonDepth before parsing it', () => {
    const deep = '['.repeat(10_000) + ']'.repeat(10_000);
    expect(errorOf(deep)).toEqual({
      code: 'invalid_request',
      message: 'This line exceeds the maximum JSON nesting depth of 8.',
      param: null,
      line: 7,
    });
    // Depth inside the body counts too: line, body, six arrays and the message object make 9 > 8.
    const nested = chat({}, { messages: [[[[[[{ role: 'user', content: 'x' }]]]]]] });
    expect(errorOf(nested).code).toBe('invalid_request');
  });

  it('does not count brackets inside strings towards the nesting depth', () => {
    const line = okOf(
      chat({}, { messages: [{ role: 'user', content: '[[[[[[[[[[{{{{{{{{{{ \\" [[[[[[' }] }),
    );
    expect(line.model).toBe('gpt-4o-mini');
  });

  it('reports unparseable JSON as invalid_json_line with param null', () => {
    for (const text of ['{not json', '', '{"custom_id": "x",}', "{'a': 1}"]) {
      expect(errorOf(text)).toEqual({
        code: 'invalid_json_line',
        message: 'This line is not parseable as valid JSON.',
        param: null,
        line: 7,
      });
    }
  });

  it('reports JSON that is not an object as invalid_json_line', () => {
    for (const text of ['[]', '42', 'null', '"str"', 'true']) {
      const error = errorOf(text);
      expect(error.code).toBe('invalid_json_line');
      expect(error.line).toBe(7);
    }
  });

  it.each(['custom_id', 'method', 'url', 'body'])(
    'reports a missing %s as missing_required_parameter',
    (key) => {
      const line = chat();
      delete line[key];
      expect(errorOf(line)).toEqual({
        code: 'missing_required_parameter',
        message: `Missing required parameter: '${key}'.`,
        param: key,
        line: 7,
      });
      expect(errorOf(chat({ [key]: null })).param).toBe(key);
    },
  );

  it('reports the first missing key in the order custom_id, method, url, body', () => {
    expect(errorOf({ body: {} }).param).toBe('custom_id');
    expect(errorOf({ custom_id: 'a', body: {} }).param).toBe('method');
    expect(errorOf({ custom_id: 'a', method: 'POST' }).param).toBe('url');
  });

  it('rejects a custom_id that is not a non-empty string of at most 512 characters', () => {
    for (const custom_id of [42, '', 'x'.repeat(513), ['a'], { a: 1 }]) {
      const error = errorOf(chat({ custom_id }));
      expect(error.code).toBe('invalid_request');
      expect(error.param).toBe('custom_id');
    }
    expect(okOf(chat({ custom_id: 'x'.repeat(512) })).custom_id).toHaveLength(512);
  });

  it('rejects a method other than POST', () => {
    for (const method of ['GET', 'post', 1]) {
      expect(errorOf(chat({ method }))).toMatchObject({
        code: 'invalid_request',
        param: 'method',
        line: 7,
      });
    }
  });

  it('reports a url that differs from the batch endpoint as invalid_url', () => {
    for (const url of [
      '/v1/embeddings',
      '/chat/completions',
      'https://api.openai.com/v1/chat/completions',
      '/v1/chat/completions/',
    ]) {
      expect(errorOf(chat({ url }))).toEqual({
        code: 'invalid_url',
        message: 'The URL provided for this request does not match the batch endpoint.',
        param: 'url',
        line: 7,
      });
    }
  });

  it('rejects a body that is not a JSON object', () => {
    for (const body of ['text', 3, [1, 2], true]) {
      expect(errorOf(chat({ body }))).toMatchObject({
        code: 'invalid_request',
        param: 'body',
        line: 7,
      });
    }
  });

  it('reports stream: true as streaming_unsupported with the endpoint label', () => {
    expect(errorOf(chat({}, { stream: true }))).toEqual({
      code: 'streaming_unsupported',
      message: 'Chat Completions: Streaming is not supported in the Batch API.',
      param: 'body.stream',
      line: 7,
    });
    const embedding = {
      custom_id: 'e',
      method: 'POST',
      url: '/v1/embeddings',
      body: { model: 'text-embedding-3-small', input: 'x', stream: true },
    };
    expect(errorOf(embedding, ctx('/v1/embeddings')).message).toBe(
      'Embeddings: Streaming is not supported in the Batch API.',
    );
  });

  it('requires body.model', () => {
    for (const model of [undefined, '', 5, null]) {
      const line = chat({}, { model });
      expect(errorOf(line)).toEqual({
        code: 'invalid_request',
        message: 'Model parameter is required.',
        param: 'body.model',
        line: 7,
      });
    }
  });

  it("requires the endpoint's input field (messages, input, prompt)", () => {
    const noMessages = chat();
    delete (noMessages.body as Record<string, unknown>).messages;
    expect(errorOf(noMessages)).toEqual({
      code: 'invalid_request',
      message: 'Messages parameter is required.',
      param: 'body.messages',
      line: 7,
    });
    const noInput = {
      custom_id: 'e',
      method: 'POST',
      url: '/v1/embeddings',
      body: { model: 'text-embedding-3-small' },
    };
    expect(errorOf(noInput, ctx('/v1/embeddings'))).toEqual({
      code: 'invalid_request',
      message: 'Input parameter is required.',
      param: 'body.input',
      line: 7,
    });
    const noPrompt = {
      custom_id: 'c',
      method: 'POST',
      url: '/v1/completions',
      body: { model: 'gpt-4o-mini' },
    };
    expect(errorOf(noPrompt, ctx('/v1/completions'))).toMatchObject({
      message: 'Prompt parameter is required.',
      param: 'body.prompt',
    });
  });

  it('accepts a responses line with a prompt instead of input', () => {
    const line = {
      custom_id: 'r',
      method: 'POST',
      url: '/v1/responses',
      body: { model: 'gpt-4o-mini', prompt: { id: 'pmpt_1' } },
    };
    expect(okOf(line, ctx('/v1/responses')).model).toBe('gpt-4o-mini');
  });

  it('defaults the moderation model to omni-moderation-latest for routing', () => {
    const routed: string[] = [];
    const line = { custom_id: 'm', method: 'POST', url: '/v1/moderations', body: { input: 'x' } };
    const valid = okOf(line, ctx('/v1/moderations', routed));
    expect(routed).toEqual(['omni-moderation-latest']);
    expect(valid.model).toBe('omni-moderation-latest');
    expect(valid.body).toBe('{"input":"x"}');
  });

  it.each([...FORBIDDEN_BODY_KEYS])('refuses the routing/credential body key %s', (key) => {
    const error = errorOf(chat({}, { [key]: 'http://evil.example' }));
    expect(error).toMatchObject({ code: 'invalid_request', param: `body.${key}`, line: 7 });
    expect(error.message).toContain(`'${key}'`);
  });

  it('reports a model no upstream serves as model_not_found', () => {
    const routed: string[] = [];
    expect(
      errorOf(chat({}, { model: 'nonexistent-model-xyz' }), ctx('/v1/chat/completions', routed)),
    ).toEqual({
      code: 'model_not_found',
      message: "The provided model 'nonexistent-model-xyz' is not supported by the Batch API.",
      param: 'body.model',
      line: 7,
    });
    expect(routed).toEqual(['nonexistent-model-xyz']);
  });

  it('counts embedding inputs: a string or one token array is 1, a list is its length', () => {
    const emb = (input: unknown) =>
      okOf(
        {
          custom_id: 'e',
          method: 'POST',
          url: '/v1/embeddings',
          body: { model: 'text-embedding-3-small', input },
        },
        ctx('/v1/embeddings'),
      );
    expect(emb('one').embeddingInputs).toBe(1);
    expect(emb([1, 2, 3]).embeddingInputs).toBe(1);
    expect(emb(['a', 'b', 'c']).embeddingInputs).toBe(3);
    expect(emb([[1, 2], [3]]).embeddingInputs).toBe(2);
  });

  it('reports a line that is not valid UTF-8 (lone surrogates) as invalid_json_line', () => {
    // readJsonlLines decodes bytes that are not UTF-8 to lone surrogates (here 0xff 0xfe).
    const inString = JSON.stringify(chat()).replace('"req-1"', '"req-\udcff\udcfe"');
    const outside = `${JSON.stringify(chat())}\udcff`;
    for (const text of [inString, outside]) {
      expect(errorOf(text)).toEqual({
        code: 'invalid_json_line',
        message: 'This line is not valid UTF-8.',
        param: null,
        line: 7,
      });
    }
  });

  it('still accepts astral characters and JSON-escaped surrogates', () => {
    const line = okOf(
      chat({ custom_id: 'id-👋🏽' }, { messages: [{ role: 'user', content: '😀' }] }),
    );
    expect(line.custom_id).toBe('id-👋🏽');
    expect(line.body).toContain('😀');
    const escaped = JSON.stringify(chat()).replace('"hi"', '"\\ud800 lone but escaped"');
    expect(okOf(escaped).body).toContain('\\ud800 lone but escaped');
  });

  it('keeps reporting a line that starts with a BOM as unparseable JSON', () => {
    expect(errorOf(`\ufeff${JSON.stringify(chat())}`, ctx(), 1)).toEqual({
      code: 'invalid_json_line',
      message: 'This line is not parseable as valid JSON.',
      param: null,
      line: 1,
    });
  });

  it('rejects a body number that would not be forwarded exactly, naming its path', () => {
    const messages = '"messages":[{"role":"user","content":"hi"}]';
    const lineWith = (fields: string) =>
      `{"custom_id":"req-1","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini",${fields}}}`;
    const cases: [string, string][] = [
      [`${messages},"seed":12345678901234567890123`, 'body.seed'],
      [`${messages},"max_tokens":1e400`, 'body.max_tokens'],
      [`${messages},"logit_bias":{"50256":-1e400}`, 'body.logit_bias.50256'],
      [`${messages},"seed":9007199254740992`, 'body.seed'], // 2^53: 2^53 + 1 reads the same
      [`${messages},"temperature":1e300`, 'body.temperature'],
      [
        '"messages":[{"role":"user","content":"hi"},{"role":"user","content":"x","n":[1,-9007199254740993]}]',
        'body.messages[1].n[1]',
      ],
    ];
    for (const [fields, param] of cases) {
      expect(errorOf(lineWith(fields)), fields).toEqual({
        code: 'invalid_request',
        message: `The number at '${param}' cannot be sent upstream exactly: numbers in the body must be between -9007199254740991 and 9007199254740991.`,
        param,
        line: 7,
      });
    }
  });

  it('accepts fractions and safe integers and forwards them unchanged', () => {
    const numbers = {
      temperature: 0.1,
      top_p: 1e-7,
      frequency_penalty: -0.5,
      seed: Number.MAX_SAFE_INTEGER,
      n: -Number.MAX_SAFE_INTEGER,
      max_tokens: 1e15,
      logprobs: 0,
    };
    const body = JSON.parse(okOf(chat({}, numbers)).body) as Record<string, unknown>;
    expect(body).toMatchObject(numbers);
    expect(okOf(chat({}, numbers)).body).toContain('"seed":9007199254740991');
  });

  it('reports the line number it is given', () => {
    expect(validateLine('{oops', 12_345, ctx())).toMatchObject({
      ok: false,
      error: { line: 12_345 },
    });
  });
});
