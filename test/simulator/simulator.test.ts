import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { chatBody, postJson, withSim } from './sim-helpers.ts';

describe('simulator endpoints', () => {
  it('answers chat completions shaped like OpenAI, deterministically', async () => {
    await withSim({}, async ({ client }) => {
      const params = {
        model: 'gpt-4o-mini',
        messages: [{ role: 'user' as const, content: 'Hello, simulator' }],
      };
      const first = await client.chat.completions.create(params);
      const second = await client.chat.completions.create(params);
      expect(first).toMatchObject({
        object: 'chat.completion',
        model: 'gpt-4o-mini',
        service_tier: 'default',
      });
      expect(first.id).toMatch(/^chatcmpl-/);
      const choice = first.choices[0];
      expect(choice?.message).toMatchObject({ role: 'assistant', refusal: null, annotations: [] });
      expect(choice?.message.content).toMatch(/^Simulated reply to: Hello, simulator/);
      expect(choice?.finish_reason).toBe('stop');
      const usage = first.usage;
      expect(usage?.prompt_tokens).toBe(Math.ceil('Hello, simulator'.length / 4) + 4);
      expect(usage?.completion_tokens).toBeGreaterThanOrEqual(8);
      expect(usage?.completion_tokens).toBeLessThanOrEqual(64);
      expect(usage?.total_tokens).toBe(
        (usage?.prompt_tokens ?? 0) + (usage?.completion_tokens ?? 0),
      );
      expect(usage?.completion_tokens_details?.reasoning_tokens).toBe(0);
      expect(second.choices[0]?.message.content).toBe(choice?.message.content);
      expect(second.id).not.toBe(first.id);
    });
  });

  it('caps completion tokens with max_tokens and reports finish_reason length', async () => {
    await withSim({}, async ({ client }) => {
      const completion = await client.chat.completions.create({
        model: 'sim-model',
        max_completion_tokens: 3,
        messages: [{ role: 'user', content: 'short please' }],
      });
      expect(completion.usage?.completion_tokens).toBe(3);
      expect(completion.choices[0]?.finish_reason).toBe('length');
    });
  });

  it('streams chat completions as SSE', async () => {
    await withSim({}, async ({ client }) => {
      const stream = await client.chat.completions.create({
        model: 'gpt-4o',
        stream: true,
        stream_options: { include_usage: true },
        messages: [{ role: 'user', content: 'stream me' }],
      });
      let text = '';
      let totalTokens = 0;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta.content ?? '';
        totalTokens = chunk.usage?.total_tokens ?? totalTokens;
      }
      expect(text).toMatch(/^Simulated reply to: stream me/);
      expect(totalTokens).toBeGreaterThan(0);
    });
  });

  it('returns embeddings through the SDK base64 path and as floats', async () => {
    await withSim({}, async ({ client, url }) => {
      const viaSdk = await client.embeddings.create({
        model: 'text-embedding-3-small',
        input: ['alpha', 'beta'],
      });
      expect(viaSdk.data).toHaveLength(2);
      const vector = viaSdk.data[0]?.embedding ?? [];
      expect(vector).toHaveLength(8);
      expect(vector.every((x) => typeof x === 'number' && Number.isFinite(x))).toBe(true);
      const floats = (await (
        await postJson(url, '/v1/embeddings', { model: 'e', input: 'alpha', dimensions: 8 })
      ).json()) as {
        data: Array<{ embedding: number[] }>;
      };
      expect(floats.data[0]?.embedding).toEqual(vector);
    });
  });

  it('answers the responses API with an output message', async () => {
    await withSim({}, async ({ client }) => {
      const response = await client.responses.create({ model: 'gpt-4o-mini', input: 'Say hi' });
      expect(response).toMatchObject({
        object: 'response',
        status: 'completed',
        model: 'gpt-4o-mini',
      });
      expect(response.id).toMatch(/^resp_/);
      expect(response.output[0]).toMatchObject({
        type: 'message',
        role: 'assistant',
        status: 'completed',
      });
      expect(response.output_text).toMatch(/^Simulated reply to: Say hi/);
      expect(response.usage?.total_tokens).toBe(
        (response.usage?.input_tokens ?? 0) + (response.usage?.output_tokens ?? 0),
      );
    });
  });

  it('lists models and answers moderations', async () => {
    await withSim({ models: ['sim-a', 'sim-b'] }, async ({ client }) => {
      const models = [];
      for await (const model of client.models.list()) models.push(model.id);
      expect(models).toEqual(['sim-a', 'sim-b']);
      const moderation = await client.moderations.create({ input: 'hello' });
      expect(moderation.results[0]?.flagged).toBe(false);
    });
  });

  it('answers OpenAI error envelopes for unknown routes, bad JSON and a missing model', async () => {
    await withSim({}, async ({ url }) => {
      const notFound = await postJson(url, '/v1/foo', {});
      expect(notFound.status).toBe(404);
      expect(notFound.headers.get('x-request-id')).toMatch(/^req_[0-9a-f]{32}$/);
      expect(await notFound.json()).toEqual({
        error: {
          message: 'Invalid URL (POST /v1/foo)',
          type: 'invalid_request_error',
          param: null,
          code: null,
        },
      });
      const badJson = await fetch(`${url}/v1/chat/completions`, { method: 'POST', body: '{nope' });
      expect(badJson.status).toBe(400);
      const noModel = await postJson(url, '/v1/chat/completions', {
        messages: [{ role: 'user', content: 'x' }],
      });
      expect(noModel.status).toBe(400);
      expect(((await noModel.json()) as { error: { param: string } }).error.param).toBe('model');
    });
  });
});

describe('simulator rate limits', () => {
  it('refuses the second immediate request at rpm=60 with OpenAI headers', async () => {
    await withSim({ rpm: 60, tpm: 100_000 }, async ({ url }) => {
      const ok = await postJson(url, '/v1/chat/completions', chatBody('one'));
      expect(ok.status).toBe(200);
      expect(ok.headers.get('x-ratelimit-limit-requests')).toBe('60');
      expect(ok.headers.get('x-ratelimit-remaining-requests')).toBe('59');
      expect(ok.headers.get('x-ratelimit-limit-tokens')).toBe('100000');
      const limited = await postJson(url, '/v1/chat/completions', chatBody('two'));
      expect(limited.status).toBe(429);
      expect(Number(limited.headers.get('retry-after-ms'))).toBeGreaterThan(0);
      expect(limited.headers.get('retry-after')).toBe('1');
      expect(limited.headers.get('x-ratelimit-reset-requests')).toMatch(/^\d+(\.\d+)?m?s$/);
      const body = (await limited.json()) as {
        error: { type: string; code: string; message: string };
      };
      expect(body.error).toMatchObject({ type: 'requests', code: 'rate_limit_exceeded' });
      expect(body.error.message).toMatch(
        /^Rate limit reached for gpt-4o-mini in organization org-sim on requests per min \(RPM\): Limit 60/,
      );
      // Another model has its own window.
      expect(
        (await postJson(url, '/v1/chat/completions', chatBody('three', { model: 'gpt-4o' })))
          .status,
      ).toBe(200);
    });
  });

  it('the SDK sees a RateLimitError', async () => {
    await withSim({ rpm: 60 }, async ({ client }) => {
      await client.chat.completions.create({
        model: 'm',
        messages: [{ role: 'user', content: 'a' }],
      });
      await expect(
        client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'b' }] }),
      ).rejects.toBeInstanceOf(OpenAI.RateLimitError);
    });
  });
});
