import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { RawJson, respaceJson, toPythonJson } from '../../src/lib/python-json.ts';

describe('toPythonJson', () => {
  it("uses json.dumps separators ', ' and ': '", () => {
    expect(toPythonJson({ a: 1, b: 'x', c: true, d: null })).toBe(
      '{"a": 1, "b": "x", "c": true, "d": null}',
    );
    expect(toPythonJson([1, 2, 3])).toBe('[1, 2, 3]');
  });

  it('formats an output line exactly like the captured OpenAI lines', () => {
    const line = {
      id: 'batch_req_123',
      custom_id: 'request-3',
      response: null,
      error: {
        code: 'batch_expired',
        message: 'This request could not be executed before the completion window expired.',
      },
    };
    expect(toPythonJson(line)).toBe(
      '{"id": "batch_req_123", "custom_id": "request-3", "response": null, "error": {"code": "batch_expired", "message": "This request could not be executed before the completion window expired."}}',
    );
  });

  it('spaces nested objects and arrays at every level', () => {
    const value = { a: [1, { b: [2, [3, { c: {} }]], d: [] }], e: { f: { g: 'h' } } };
    expect(toPythonJson(value)).toBe(
      '{"a": [1, {"b": [2, [3, {"c": {}}]], "d": []}], "e": {"f": {"g": "h"}}}',
    );
  });

  it('writes empty containers without spaces', () => {
    expect(toPythonJson({})).toBe('{}');
    expect(toPythonJson([])).toBe('[]');
    expect(toPythonJson({ a: {}, b: [] })).toBe('{"a": {}, "b": []}');
  });

  it('writes primitives like JSON.stringify', () => {
    expect(toPythonJson(null)).toBe('null');
    expect(toPythonJson(false)).toBe('false');
    expect(toPythonJson(42)).toBe('42');
    expect(toPythonJson(-1.5e-7)).toBe(JSON.stringify(-1.5e-7));
    expect(toPythonJson('plain')).toBe('"plain"');
  });

  it('keeps key order', () => {
    expect(toPythonJson({ z: 1, a: 2, m: 3 })).toBe('{"z": 1, "a": 2, "m": 3}');
  });

  it('never alters separators inside strings, and escapes like JSON.stringify', () => {
    const value = { 'k, "q": v': 'a, b: c,d:e', quote: 'say "hi"\n\tback\\slash', ctl: '\u0001' };
    const text = toPythonJson(value);
    expect(text).toBe(
      '{"k, \\"q\\": v": "a, b: c,d:e", "quote": "say \\"hi\\"\\n\\tback\\\\slash", "ctl": "\\u0001"}',
    );
    expect(JSON.parse(text)).toEqual(value);
  });

  it('passes unicode through unescaped (UTF-8 output)', () => {
    const value = { text: 'héllo — 日本語 😀', ключ: 'значение' };
    const text = toPythonJson(value);
    expect(text).toBe('{"text": "héllo — 日本語 😀", "ключ": "значение"}');
    expect(text).not.toContain('\\u');
    expect(JSON.parse(text)).toEqual(value);
  });

  it('omits undefined properties and writes undefined array slots as null, like JSON.stringify', () => {
    expect(toPythonJson({ a: 1, b: undefined, c: 2 })).toBe('{"a": 1, "c": 2}');
    expect(toPythonJson({ b: undefined })).toBe('{}');
    expect(toPythonJson([1, undefined, 2])).toBe('[1, null, 2]');
  });

  it('round-trips a realistic chat.completion body', () => {
    const body = {
      id: 'chatcmpl-abc',
      object: 'chat.completion',
      created: 1_711_475_133,
      model: 'gpt-4o-mini',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: 'Hi, there: "friend"', refusal: null },
          logprobs: null,
          finish_reason: 'stop',
        },
      ],
      usage: {
        prompt_tokens: 10,
        completion_tokens: 3,
        total_tokens: 13,
        prompt_tokens_details: { cached_tokens: 0 },
      },
      system_fingerprint: 'fp_1',
    };
    const text = toPythonJson(body);
    expect(JSON.parse(text)).toEqual(body);
    expect(text).not.toContain('\n');
    // Every structural separator carries exactly one space.
    const structural = text.replace(/"(?:[^"\\]|\\.)*"/g, '""');
    expect(structural).not.toMatch(/,(?! )/);
    expect(structural).not.toMatch(/:(?! )/);
    expect(structural).not.toMatch(/[,:] {2}/);
  });

  it('re-spaces JSON text exactly as it would serialise the parsed value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.constantFrom(undefined, 2, '\t'), (value, indent) => {
        expect(respaceJson(JSON.stringify(value, null, indent))).toBe(toPythonJson(value));
      }),
      { seed: 42, numRuns: 500 },
    );
  });

  it('writes raw JSON text with its numbers and string escapes untouched', () => {
    const upstream = '{"seed":12345678901234567890123,"x":1.0,"s":"a, b: \\"c\\"\\u00e9"}';
    expect(toPythonJson({ body: new RawJson(upstream) })).toBe(
      '{"body": {"seed": 12345678901234567890123, "x": 1.0, "s": "a, b: \\"c\\"\\u00e9"}}',
    );
  });
});
