import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeChat as chatCl100k } from 'gpt-tokenizer/encoding/cl100k_base';
import { encodeChat as chatO200k, encode as encodeO200k } from 'gpt-tokenizer/encoding/o200k_base';
import { encodeChat as chatHarmony } from 'gpt-tokenizer/encoding/o200k_harmony';
import { resolveScheduling } from '../../src/domain/scheduling-settings.ts';
import { UpstreamScheduler } from '../../src/engine/limiter/upstream-scheduler.ts';
import type { Clock } from '../../src/lib/clock.ts';
import {
  encodingForModel,
  isKnownModel,
  tokenizerFor,
} from '../../src/protocol/model-tokenizer.ts';
import {
  countRequestTokens,
  DEFAULT_ASSUMED_MAX_TOKENS,
  endpointOfBody,
  IMAGE_TOKENS_HIGH,
  IMAGE_TOKENS_LOW,
} from '../../src/protocol/request-tokens.ts';
import type { Upstream } from '../../src/providers/provider.ts';
import { estimateBatch } from '../../src/sdk/estimate.ts';
import { arrayLineSource } from '../../src/sdk/line-source.ts';

const ROOT = join(import.meta.dirname, '..', '..');
type Body = Record<string, unknown>;

const count = (body: Body, endpoint?: string) =>
  countRequestTokens(body, tokenizerFor(String(body.model)), {
    endpoint,
    defaultMaxTokens: DEFAULT_ASSUMED_MAX_TOKENS,
  });

/** The server's path: what the scheduler reserves for a body (a huge token limit admits all). */
function serverEstimate(body: Body): { input: number; maxOutput: number } {
  const clock: Clock = { nowMs: () => 0, sleep: async () => undefined };
  const upstream = { name: 'u', maxConcurrency: 8 } as Upstream;
  const settings = resolveScheduling({ tpm: 1e12 });
  const r = new UpstreamScheduler(upstream, settings, clock).tryAdmit(
    String(body.model),
    JSON.stringify(body),
  );
  if (!('key' in r)) throw new Error('not admitted');
  return { input: r.rawPrompt, maxOutput: r.total - r.prompt };
}

/** The SDK's path: `estimateBatch` over a one-line file. */
async function sdkEstimate(url: string, body: Body): Promise<{ input: number; maxOutput: number }> {
  const line = JSON.stringify({ custom_id: 'x', method: 'POST', url, body });
  const report = await estimateBatch(arrayLineSource([line]));
  const [model] = report.models;
  if (!model) throw new Error(JSON.stringify(report.invalid));
  return { input: model.input_tokens, maxOutput: model.max_output_tokens };
}

const image = (detail?: string) => ({
  type: 'image_url',
  image_url: detail === undefined ? { url: 'data:,' } : { url: 'data:,', detail },
});

describe('request token estimate', () => {
  it('counts chat with the chat template, the output bound × n, and special-token text as text', () => {
    const messages = [{ role: 'user', content: 'Hello there, world! <|endoftext|>' }];
    const est = count({ model: 'gpt-4o-mini', messages, max_tokens: 50, n: 2 });
    const special = { disallowedSpecial: new Set<string>() };
    expect(est.input).toBe(chatO200k(messages, 'gpt-4o', special).length);
    expect(est.input).toBe(encodeO200k(messages[0]!.content, special).length + 4 + 3);
    expect(est).toMatchObject({ maxOutput: 100, assumedMaxOutput: false, exact: true });
  });

  it('counts a chat exactly as the chat template of its encoding does, for every template', () => {
    const messages = [
      { role: 'developer', content: 'Answer briefly.' },
      { role: 'user', content: '\n\nleading newlines, <|im_start|> as text, émoji 🙂' },
      { role: 'assistant', content: '' },
      { role: 'tool', content: '{"a": 1}' },
    ];
    const special = { disallowedSpecial: new Set<string>() };
    const templates: [string, number][] = [
      ['gpt-3.5-turbo', chatCl100k(messages, 'gpt-3.5-turbo', special).length],
      ['gpt-4-turbo', chatCl100k(messages, 'gpt-4', special).length],
      ['gpt-4o', chatO200k(messages, 'gpt-4o', special).length],
      ['gpt-oss-120b', chatHarmony(messages, 'gpt-oss-20b', special).length],
    ];
    expect(templates.map(([model]) => [model, tokenizerFor(model).countChat(messages)])).toEqual(
      templates,
    );
  });

  it('costs an image by its detail: 85 tokens at low, 765 at high, auto or unset', () => {
    const withParts = (...parts: object[]) =>
      count({
        model: 'gpt-4o',
        messages: [{ role: 'user', content: [{ type: 'text', text: 'what is this?' }, ...parts] }],
      }).input;
    const text = withParts();
    expect(withParts(image('low')) - text).toBe(IMAGE_TOKENS_LOW);
    expect(withParts(image('high')) - text).toBe(IMAGE_TOKENS_HIGH);
    expect(withParts(image('auto')) - text).toBe(IMAGE_TOKENS_HIGH);
    expect(withParts(image()) - text).toBe(IMAGE_TOKENS_HIGH);
    expect(withParts(image('low'), image('high')) - text).toBe(
      IMAGE_TOKENS_LOW + IMAGE_TOKENS_HIGH,
    );
    const responses = (detail: string) =>
      count({
        model: 'gpt-5',
        input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'data:,', detail }] }],
      }).input;
    expect(responses('high') - responses('low')).toBe(IMAGE_TOKENS_HIGH - IMAGE_TOKENS_LOW);
    expect(count({ model: 'gpt-4o', messages: [{ role: 'user', content: [image()] }] }).exact).toBe(
      false,
    );
  });

  it('bounds output by the endpoint: the default for chat, 16 for completions, none for embeddings', () => {
    const chat = count({ model: 'x', messages: [{ role: 'user', content: 'hi' }] });
    expect(chat).toMatchObject({ maxOutput: DEFAULT_ASSUMED_MAX_TOKENS, assumedMaxOutput: true });
    expect(count({ model: 'gpt-3.5-turbo-instruct', prompt: 'Say hi' }).maxOutput).toBe(16);
    const emb = count({ model: 'text-embedding-3-small', input: ['a b', 'c'] });
    expect(emb.maxOutput).toBe(0);
    expect(emb.input).toBe(3);
  });

  it('reads the endpoint off the body when the caller has only the body', () => {
    expect(endpointOfBody({ model: 'm', messages: [] })).toBe('/v1/chat/completions');
    expect(endpointOfBody({ model: 'm', prompt: 'p' })).toBe('/v1/completions');
    expect(endpointOfBody({ model: 'text-embedding-3-large', input: 'a' })).toBe('/v1/embeddings');
    expect(endpointOfBody({ model: 'bge-m3', input: 'a', encoding_format: 'float' })).toBe(
      '/v1/embeddings',
    );
    expect(endpointOfBody({ model: 'omni-moderation-latest', input: 'a' })).toBe('/v1/moderations');
    expect(endpointOfBody({ model: 'gpt-5', input: 'a' })).toBe('/v1/responses');
  });

  it('maps model families to encodings, unknown models to o200k_base', () => {
    const families: [string, string, boolean][] = [
      ['gpt-3.5-turbo', 'cl100k_base', true],
      ['gpt-4', 'cl100k_base', true],
      ['gpt-4-turbo', 'cl100k_base', true],
      ['text-embedding-3-small', 'cl100k_base', true],
      ['text-moderation-latest', 'cl100k_base', true],
      ['gpt-4o-mini', 'o200k_base', true],
      ['gpt-4.1', 'o200k_base', true],
      ['gpt-5', 'o200k_base', true],
      ['o3-mini', 'o200k_base', true],
      ['omni-moderation-latest', 'o200k_base', true],
      ['gpt-oss-20b', 'o200k_harmony', true],
      ['llama-3.1-8b-instruct', 'o200k_base', false],
    ];
    expect(families.map(([m]) => [m, encodingForModel(m), isKnownModel(m)])).toEqual(families);
    expect(tokenizerFor('gpt-oss-120b').encoding).toBe('o200k_harmony');
  });
});

describe('one estimate for the server and the SDK', () => {
  const cases: [string, Body][] = [
    [
      '/v1/chat/completions',
      {
        model: 'gpt-4o-mini',
        messages: [
          { role: 'system', content: 'You are terse.' },
          { role: 'user', content: 'Summarize: <|endoftext|> is plain text.', name: 'ann' },
        ],
        max_tokens: 40,
        n: 3,
      },
    ],
    [
      '/v1/chat/completions',
      {
        model: 'gpt-4.1',
        messages: [
          { role: 'user', content: [{ type: 'text', text: 'two' }, image('low'), image()] },
        ],
        tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }],
      },
    ],
    [
      '/v1/chat/completions',
      { model: 'gpt-3.5-turbo', messages: [{ role: 'user', content: 'a' }] },
    ],
    ['/v1/chat/completions', { model: 'gpt-oss-20b', messages: [{ role: 'user', content: 'b' }] }],
    ['/v1/chat/completions', { model: 'llama-3', messages: [{ role: 'user', content: 'c' }] }],
    [
      '/v1/responses',
      { model: 'gpt-5', instructions: 'Be brief.', input: 'Why?', max_output_tokens: 64 },
    ],
    ['/v1/completions', { model: 'gpt-3.5-turbo-instruct', prompt: ['one', 'two'] }],
    ['/v1/embeddings', { model: 'text-embedding-3-small', input: ['first', 'second one'] }],
    ['/v1/moderations', { model: 'omni-moderation-latest', input: 'is this fine?' }],
  ];

  it.each(cases)(
    '%s %j counts the same through the scheduler and estimateBatch',
    async (url, body) => {
      const server = serverEstimate(body);
      expect(server.input).toBeGreaterThan(0);
      expect(await sdkEstimate(url, body)).toEqual(server);
      const direct = count(body, url);
      expect(server).toEqual({ input: direct.input, maxOutput: direct.maxOutput });
    },
  );
});

describe('tokenizer loading', () => {
  it('loads no encoding when the server and SDK modules load, and only the one a count needs', () => {
    const script = `
      import { createRequire } from 'node:module';
      const cache = createRequire(import.meta.url).cache;
      const loaded = () => Object.keys(cache).filter((k) => /gpt-tokenizer.*bpeRanks/.test(k))
        .map((k) => k.replace(/.*bpeRanks\\//, ''));
      await import('./src/compose.ts');
      await import('./src/sdk/index.ts');
      const before = loaded();
      const { tokenizerFor } = await import('./src/protocol/model-tokenizer.ts');
      tokenizerFor('gpt-4').count('hi');
      console.log(JSON.stringify({ before, after: loaded() }));`;
    const out = execFileSync(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      { cwd: ROOT, encoding: 'utf8' },
    );
    expect(JSON.parse(out)).toEqual({ before: [], after: ['cl100k_base.js'] });
  }, 30_000);

  it('has gpt-tokenizer imported at module load by no source file (types only)', () => {
    const files = (readdirSync(join(ROOT, 'src'), { recursive: true }) as string[]).filter((f) =>
      f.endsWith('.ts'),
    );
    const eager = files.filter((f) =>
      readFileSync(join(ROOT, 'src', f), 'utf8')
        .split('\n')
        .some((l) => /from 'gpt-tokenizer/.test(l) && !/^import type /.test(l)),
    );
    expect(eager).toEqual([]);
    expect(files).toContain(join('protocol', 'model-tokenizer.ts'));
  });
});

describe('bounded counting', () => {
  const prose = Array.from({ length: 400 }, (_, i) => `word${i % 37} and, "quoted" ${i}!\n`).join(
    ' ',
  );

  it('counts long text in pieces with exactly the tokens of one call', () => {
    expect(prose.length).toBeGreaterThan(4 * 256);
    expect(tokenizerFor('gpt-4o').count(prose)).toBe(encodeO200k(prose).length);
  });

  it('samples at most the given characters and extrapolates the rest', () => {
    const tk = tokenizerFor('gpt-4o');
    // Each text is sampled on its first 1,024 characters at most.
    const exact = tk.count('a'.repeat(1_024));
    const sampled = tk.sampling(4_096).count('a'.repeat(1_048_576));
    expect(sampled).toBe(Math.ceil((exact * 1_048_576) / 1_024));
    // Once the budget is spent, other texts get the rate measured so far.
    const budgeted = tk.sampling(100);
    expect(budgeted.count(prose.slice(0, 100))).toBe(encodeO200k(prose.slice(0, 100)).length);
    expect(budgeted.count('x'.repeat(1_000))).toBeGreaterThan(0);
  });

  it('estimates a body over 64 KiB from its text, without parsing it', () => {
    const clock: Clock = { nowMs: () => 0, sleep: async () => undefined };
    const upstream = { name: 'u', maxConcurrency: 8 } as Upstream;
    const scheduler = new UpstreamScheduler(upstream, resolveScheduling({ tpm: 1e12 }), clock);
    const content = 'word '.repeat(40_000);
    const body = JSON.stringify({
      model: 'gpt-4o',
      messages: [{ role: 'user', content }],
      max_tokens: 7,
      n: 2,
    });
    const parse = JSON.parse;
    let parses = 0;
    JSON.parse = (...args: Parameters<typeof parse>) => {
      parses++;
      return parse(...args) as unknown;
    };
    let r: ReturnType<typeof scheduler.tryAdmit>;
    try {
      r = scheduler.tryAdmit('gpt-4o', body, {});
    } finally {
      JSON.parse = parse;
    }
    expect(parses).toBe(0);
    if (!('key' in r)) throw new Error('not admitted');
    expect(r.total - r.prompt).toBe(14);
    const exact = countRequestTokens(parse(body) as Body, tokenizerFor('gpt-4o'), {
      defaultMaxTokens: 0,
    }).input;
    expect(r.rawPrompt / exact).toBeGreaterThan(0.9);
    expect(r.rawPrompt / exact).toBeLessThan(1.2);
  });

  it('estimates a waiting line once, however often admission is retried', () => {
    const clock: Clock = { nowMs: () => 0, sleep: async () => undefined };
    const upstream = { name: 'u', maxConcurrency: 8 } as Upstream;
    const scheduler = new UpstreamScheduler(upstream, resolveScheduling({ tpm: 1_000 }), clock);
    const body = JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });
    const item = { body };
    const parse = JSON.parse;
    let parses = 0;
    JSON.parse = (...args: Parameters<typeof parse>) => {
      parses++;
      return parse(...args) as unknown;
    };
    try {
      for (let i = 0; i < 50; i++) scheduler.tryAdmit('gpt-4o', body, item);
    } finally {
      JSON.parse = parse;
    }
    expect(parses).toBe(1);
  });
});
