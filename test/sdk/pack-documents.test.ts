import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeChat } from 'gpt-tokenizer/encoding/o200k_base';
import {
  packDocuments,
  runPackedDocuments,
  unpackResults,
  type PackDocument,
} from '../../src/sdk/index.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';
import { startFakeJsonUpstream, type FakeJsonUpstream } from './helpers/fake-json-upstream.ts';

const documents: PackDocument[] = Array.from({ length: 100 }, (_, i) => ({
  id: `doc-${i}`,
  text: `Short note number ${i} about the quarterly plan.`,
}));
const options = {
  k: 10,
  model: 'gpt-4o-mini',
  instructions: 'Summarise the document in five words.',
};

describe('packDocuments / unpackResults', () => {
  let upstream: FakeJsonUpstream;
  let t: TestServer;
  beforeAll(async () => {
    upstream = await startFakeJsonUpstream('doc-42');
    t = await startTestServer({ env: { OPENBATCH_UPSTREAM_URL: `${upstream.url}/v1` } });
  });
  afterAll(async () => {
    await t.close();
    await upstream.close();
  });

  it('packs 100 documents into 10 requests with a schema keyed by document id', async () => {
    const packed = await packDocuments(documents, options);
    expect(packed.requests).toHaveLength(10);
    expect(packed.groups.flatMap((g) => g.documentIds)).toEqual(documents.map((d) => d.id));
    const format = packed.requests[0]!.body.response_format as {
      json_schema: { schema: { required: string[] } };
    };
    expect(format.json_schema.schema.required).toEqual(documents.slice(0, 10).map((d) => d.id));
    // Saved tokens come from the tokenizer: the instructions and schema are paid once per request.
    expect(packed.tokens.saved).toBe(packed.tokens.single - packed.tokens.packed);
    expect(packed.tokens.saved).toBeGreaterThan(0);
    const system = (packed.requests[0]!.body.messages as { role: string; content: string }[])[0]!;
    const instructionTokens = encodeChat([system], 'gpt-4o').length;
    expect(packed.tokens.saved).toBeGreaterThanOrEqual(90 * instructionTokens - 90 * 3);
  });

  it('marks a document the answer omits for a retry alone', async () => {
    const packed = await packDocuments(documents.slice(0, 3), options);
    const content = JSON.stringify({ 'doc-0': 'a', 'doc-2': 7 });
    const unpacked = unpackResults(packed, [
      {
        id: 'x',
        custom_id: 'pack-0',
        response: {
          status_code: 200,
          request_id: 'r',
          body: { choices: [{ message: { content } }] },
        },
        error: null,
      },
    ]);
    expect(unpacked.documents.map((d) => d.error?.code ?? 'ok')).toEqual([
      'ok',
      'missing_answer',
      'malformed_answer',
    ]);
    expect(unpacked.retry).toEqual(['doc-1', 'doc-2']);
  });

  it('runs 100 documents as 10 requests, retries the omitted one alone, and returns 100 results', async () => {
    const run = await runPackedDocuments(documents, {
      ...options,
      baseURL: t.baseURL,
      apiKey: 'test-key',
      pollIntervalMs: 100,
    });
    expect(upstream.calls.filter((ids) => ids.length === 10)).toHaveLength(10);
    expect(upstream.calls.filter((ids) => ids.length === 1)).toEqual([['doc-42']]);
    expect(run.requests).toBe(11);
    expect(run.retried).toEqual(['doc-42']);
    expect(run.documents.map((d) => d.id)).toEqual(documents.map((d) => d.id));
    run.documents.forEach((d, i) => expect(d.answer).toBe(`answer to ${documents[i]!.text}`));
    expect(run.usage.total_tokens).toBe(10 * (25 * 10 + 20) + (25 + 20));
  });
});
