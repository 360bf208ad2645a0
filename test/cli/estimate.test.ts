import net from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  encode as encodeCl100k,
  encodeChat as chatCl100k,
} from 'gpt-tokenizer/encoding/cl100k_base';
import { encodeChat as chatO200k } from 'gpt-tokenizer/encoding/o200k_base';
import { runEstimate } from '../../src/cli/commands/estimate.ts';
import { priceForModel } from '../../src/sdk/pricing.ts';
import { writeJsonl } from '../helpers/test-server.ts';
import { captureIo } from '../sdk/helpers/capture-io.ts';

const chat = (id: string, model: string, messages: object[], extra: object = {}) => ({
  custom_id: id,
  method: 'POST',
  url: '/v1/chat/completions',
  body: { model, messages, ...extra },
});
const m1 = [
  { role: 'system', content: 'You are a concise summarizer.' },
  {
    role: 'user',
    content: 'Summarize: OpenAI released GPT-4o in May 2024. <|endoftext|> is plain text here.',
  },
];
const m2 = [{ role: 'user', content: 'Calculate:  1 + 2 = ' }];
const m4 = [{ role: 'user', content: 'Classify this review: "The box was damaged."' }];
const m9 = [
  { role: 'developer', content: 'Answer briefly.' },
  { role: 'user', content: 'Why is the sky blue?' },
];
const embedInputs = ['first passage to embed', 'second passage, a little longer than the first'];

/** The crafted file: valid lines of three models and endpoints, and three invalid lines. */
function craftedFile(): string {
  return writeJsonl([
    chat('a', 'gpt-4o-mini', m1, { max_tokens: 100 }), // line 1
    chat('b', 'gpt-4o-mini', m2), // line 2: no output limit → default
    '{"custom_id": "broken", ', // line 3: not JSON
    chat('c', 'gpt-4', m4, { max_completion_tokens: 50 }), // line 4: cl100k
    { custom_id: 'd', method: 'POST', url: '/v1/chat/completions' }, // line 5: no body
    {
      custom_id: 'e',
      method: 'POST',
      url: '/v1/embeddings',
      body: { model: 'text-embedding-3-small', input: embedInputs },
    }, // line 6
    chat('a', 'gpt-4o-mini', m2, { max_tokens: 5 }), // line 7: duplicate custom_id
    '', // line 8: blank, ignored
    chat('f', 'gpt-4o-mini', m9, { max_tokens: 10, n: 2 }), // line 9
  ]);
}

describe('openbatch estimate', () => {
  afterEach(() => vi.restoreAllMocks());

  it('counts tokens as the tokenizer does, prices standard and batch, reports bad lines, opens no socket', async () => {
    const connect = vi.spyOn(net.Socket.prototype, 'connect');
    const cap = captureIo();
    const code = await runEstimate(
      { input: craftedFile(), json: true, rpm: 60, tpm: 1_000_000 },
      cap.io,
    );
    expect(connect).not.toHaveBeenCalled();
    expect(code).toBe(2);
    expect(cap.errorLines()).toHaveLength(1);
    expect(cap.errorLines()[0]).toContain('3 invalid line(s)');

    const report = JSON.parse(cap.stdout());
    expect(report.invalid.map((i: { line: number; code: string }) => [i.line, i.code])).toEqual([
      [3, 'invalid_json_line'],
      [5, 'missing_required_parameter'],
      [7, 'duplicate_custom_id'],
    ]);
    expect(report).toMatchObject({ lines: 8, valid: 5, invalid_count: 3 });
    const byModel = Object.fromEntries(report.models.map((m: { model: string }) => [m.model, m]));

    const mini = byModel['gpt-4o-mini'];
    expect(mini.encoding).toBe('o200k_base');
    const special = { disallowedSpecial: new Set<string>() };
    expect(mini.input_tokens).toBe(
      chatO200k(m1 as never, 'gpt-4o', special).length +
        chatO200k(m2 as never, 'gpt-4o').length +
        chatO200k(m9 as never, 'gpt-4o').length,
    );
    expect(mini.max_output_tokens).toBe(100 + 1_024 + 10 * 2);
    expect(mini.lines_assumed_max_output).toBe(1);
    expect(mini.approximate_lines).toBe(0);

    expect(byModel['gpt-4'].encoding).toBe('cl100k_base');
    expect(byModel['gpt-4'].input_tokens).toBe(chatCl100k(m4 as never, 'gpt-4').length);
    expect(byModel['gpt-4'].max_output_tokens).toBe(50);
    const embed = byModel['text-embedding-3-small'];
    expect(embed.input_tokens).toBe(embedInputs.reduce((n, t) => n + encodeCl100k(t).length, 0));
    expect(embed.max_output_tokens).toBe(0);

    const price = priceForModel('gpt-4o-mini')!;
    const standard =
      (mini.input_tokens * price.inputPerMTok + mini.max_output_tokens * price.outputPerMTok) / 1e6;
    expect(mini.standard.total).toBeCloseTo(standard, 12);
    expect(mini.batch.total).toBeCloseTo(standard / 2, 12);
    expect(report.total.batch_usd).toBeCloseTo(report.total.standard_usd / 2, 12);
    // 5 requests at 60 RPM take 5 s; the token budget is far from binding.
    expect(report.turnaround).toEqual({ rpm: 60, tpm: 1_000_000, seconds: 5, bound: 'rpm' });
    // The spy does see connections: a refused local one shows up.
    await new Promise((resolve) => net.connect(1, '127.0.0.1').once('error', resolve));
    expect(connect).toHaveBeenCalled();
  });

  it('prints a cost table, the invalid lines by number and the assumptions', async () => {
    const cap = captureIo();
    expect(await runEstimate({ input: craftedFile(), pricing: undefined }, cap.io)).toBe(2);
    const text = cap.stdout();
    expect(text).toContain('8 lines, 5 valid, 3 invalid');
    expect(text).toContain('line 3: invalid_json_line');
    expect(text).toContain('line 7: duplicate_custom_id');
    expect(text).toMatch(
      /\| Model +\| Lines \| Input tokens \| Max output tokens \| Standard price \| Batch price \|/,
    );
    expect(text).toMatch(/\| gpt-4o-mini +\| +3 \|/);
    expect(text).toContain('counted at 1,024 (--default-max-tokens)');
    expect(text).toContain('Turnaround: pass --rpm');
  });

  it('uses prices from a --pricing file over the maintained data', async () => {
    const pricing = writeJsonl([]).replace(/input\.jsonl$/, 'prices.json');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(
      pricing,
      JSON.stringify({ 'gpt-4o-mini': { inputPerMTok: 1, outputPerMTok: 2 } }),
    );
    const input = writeJsonl([chat('a', 'gpt-4o-mini', m2, { max_tokens: 1_000_000 })]);
    const cap = captureIo();
    expect(await runEstimate({ input, pricing, json: true }, cap.io)).toBe(0);
    const [model] = JSON.parse(cap.stdout()).models;
    expect(model.standard.output).toBeCloseTo(2, 12);
    expect(model.batch.output).toBeCloseTo(1, 12);
  });
});
