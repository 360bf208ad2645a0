import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

const SIM_MODELS = ['gpt-4o-mini', 'text-embedding-3-small', 'sim-special-model'];

describe('real-time passthrough to the upstream', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ sim: { models: SIM_MODELS } });
  });
  afterAll(async () => t.close());

  it("forwards chat completions and returns the simulator's chat.completion", async () => {
    const before = t.sim.calls().length;
    const completion = await t.client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Say hello through openbatch' }],
      max_tokens: 20,
    });
    expect(completion.object).toBe('chat.completion');
    expect(completion.model).toBe('gpt-4o-mini');
    expect(completion.choices.length).toBe(1);
    expect(typeof completion.choices[0]!.message.content).toBe('string');
    expect(completion.choices[0]!.message.content!.length).toBeGreaterThan(0);
    expect(completion.usage).toBeDefined();
    expect(completion.usage!.total_tokens).toBeGreaterThan(0);
    expect(completion.usage!.total_tokens).toBe(
      completion.usage!.prompt_tokens + completion.usage!.completion_tokens,
    );
    const calls = t.sim.calls().slice(before);
    expect(calls.length).toBe(1);
    expect(calls[0]).toMatchObject({
      path: '/v1/chat/completions',
      model: 'gpt-4o-mini',
      status: 200,
    });
  });

  it('forwards embeddings; the SDK asks for base64 and decodes it to numbers', async () => {
    const res = await t.client.embeddings.create({
      model: 'text-embedding-3-small',
      input: ['a', 'b'],
    });
    expect(res.object).toBe('list');
    expect(res.data.length).toBe(2);
    expect(res.data.map((d) => d.index)).toEqual([0, 1]);
    for (const d of res.data) {
      expect(Array.isArray(d.embedding)).toBe(true);
      expect(d.embedding.length).toBeGreaterThan(0);
      expect(d.embedding.every((x) => typeof x === 'number' && Number.isFinite(x))).toBe(true);
    }
    expect(res.data[0]!.embedding).not.toEqual(res.data[1]!.embedding);
  });

  it('passes an upstream 400 back as BadRequestError with the upstream message', async () => {
    const err = await t.client.chat.completions
      .create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'please fail [sim:status=400]' }],
      })
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    const bad = err as InstanceType<typeof OpenAI.BadRequestError>;
    expect(bad.status).toBe(400);
    expect(bad.message).toContain('Simulated bad request');
    expect(bad.type).toBe('invalid_request_error');
  });

  it('streams chat completion chunks to the end', async () => {
    const stream = await t.client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'stream me a few words' }],
      max_tokens: 30,
      stream: true,
    });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.length).toBeGreaterThan(1);
    expect(chunks.every((c) => c.object === 'chat.completion.chunk')).toBe(true);
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    expect(text.length).toBeGreaterThan(0);
    expect(chunks.some((c) => c.choices[0]?.finish_reason != null)).toBe(true);

    const raw = await fetch(`${t.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: 'Bearer test-key', 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'raw stream' }],
        stream: true,
      }),
    });
    expect(raw.status).toBe(200);
    expect(raw.headers.get('content-type')).toContain('text/event-stream');
    const body = await raw.text();
    expect(body).toContain('data: ');
    expect(body.trimEnd().endsWith('data: [DONE]')).toBe(true);
  });

  it("lists the simulator's models", async () => {
    const ids: string[] = [];
    for await (const m of t.client.models.list()) {
      expect(m.object).toBe('model');
      ids.push(m.id);
    }
    expect(ids).toEqual(SIM_MODELS);
  });

  it('refuses a body that tries to choose the upstream (api_base) with 400, without calling upstream', async () => {
    const before = t.sim.calls().length;
    const raw = await fetch(`${t.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: 'Bearer test-key', 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'hi' }],
        api_base: 'http://127.0.0.1:9/v1',
      }),
    });
    expect(raw.status).toBe(400);
    const body = (await raw.json()) as {
      error: { type: string; param: string | null; message: string };
    };
    expect(body.error.type).toBe('invalid_request_error');
    expect(body.error.param).toBe('api_base');

    const params = {
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
      api_base: 'http://127.0.0.1:9/v1',
    };
    await expect(
      t.client.chat.completions.create(
        params as unknown as OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming,
      ),
    ).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    expect(t.sim.calls().length).toBe(before);
  });

  it('forwards the Responses API; output_text is derived from the output', async () => {
    const response = await t.client.responses.create({ model: 'gpt-4o-mini', input: 'hi' });
    expect(response.object).toBe('response');
    expect(typeof response.output_text).toBe('string');
    expect(response.output_text.length).toBeGreaterThan(0);
  });
});

describe('model routing with an upstream that serves only some models', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({
      configFile: { upstreams: [{ name: 'sim', baseUrl: 'SIM/v1', models: ['gpt-4o-mini'] }] },
    });
  });
  afterAll(async () => t.close());

  it('answers 404 model_not_found for a model no upstream serves, and serves a configured one', async () => {
    const before = t.sim.calls().length;
    const err = await t.client.chat.completions
      .create({ model: 'no-such-model-7b', messages: [{ role: 'user', content: 'hi' }] })
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    const nf = err as InstanceType<typeof OpenAI.NotFoundError>;
    expect(nf.status).toBe(404);
    expect(nf.code).toBe('model_not_found');
    expect(nf.message).toContain('no-such-model-7b');
    await expect(
      t.client.embeddings.create({ model: 'text-embedding-3-small', input: 'x' }),
    ).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    expect(t.sim.calls().length).toBe(before);

    const ok = await t.client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(ok.object).toBe('chat.completion');
  });
});
