import { createReadStream } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEstimate } from '../../src/cli/commands/estimate.ts';
import { estimateBatch } from '../../src/sdk/estimate.ts';
import { captureIo } from '../sdk/helpers/capture-io.ts';
import { fileLineSource } from '../../src/sdk/line-source.ts';
import {
  chatLine,
  startTestServer,
  waitForBatch,
  writeJsonl,
  type TestServer,
} from '../helpers/test-server.ts';

/** Issue 13: GET /v1/files/{id}/estimate — counts, tokens, cost and an ETA within 20%. */

const RPM = 1_800; // 30 requests a second: 150 lines take ~4 s after a one-second burst
const LINES = 150;

describe('file estimate', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({
      sim: { rpm: RPM, latencyMs: 10 },
      configFile: {
        upstreams: [
          {
            name: 'sim',
            baseUrl: 'SIM/v1',
            rpm: RPM,
            pricing: { 'gpt-4o-mini': { input: 2, output: 8 } },
          },
        ],
      },
    });
  });
  afterAll(async () => t.close());

  const estimateOf = async (fileId: string, query = '') => {
    const res = await fetch(`${t.baseURL}/files/${fileId}/estimate${query}`, {
      headers: { authorization: 'Bearer test-key' },
    });
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  };

  it('counts requests and tokens like the client, prices them, and times the run within 20%', async () => {
    const lines = Array.from({ length: LINES }, (_, i) => chatLine(`e-${i}`, `estimate line ${i}`));
    const path = writeJsonl([...lines, '{"not a line": true}']);
    const file = await t.client.files.create({ file: createReadStream(path), purpose: 'batch' });
    const { status, body } = await estimateOf(
      file.id,
      '?endpoint=/v1/chat/completions&completion_window=24h',
    );
    expect(status).toBe(200);
    const client = await estimateBatch(fileLineSource(path));
    expect(body.requests).toBe(LINES);
    expect(body.invalid_lines).toBe(1);
    expect(body.input_tokens).toBe(client.total.input_tokens);
    expect(body.max_output_tokens).toBe(LINES * 50);
    const standard = (body.input_tokens * 2 + body.max_output_tokens * 8) / 1e6;
    expect(body.cost_usd.standard).toBeCloseTo(standard, 8);
    expect(body.cost_usd.batch).toBeCloseTo(standard / 2, 8);
    expect(body.limits).toMatchObject({
      upstream: 'sim',
      binding: 'rpm',
      rpm: RPM,
      source: 'config',
    });
    expect(body.fits_completion_window).toBe(true);

    // The input with its bad line would fail validation: run the valid lines alone.
    const valid = writeJsonl(lines);
    const runFile = await t.client.files.create({
      file: createReadStream(valid),
      purpose: 'batch',
    });
    const eta = (await estimateOf(runFile.id)).body.eta_seconds as number;
    const started = Date.now();
    const batch = await t.client.batches.create({
      input_file_id: runFile.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    const done = await waitForBatch(t.client, batch.id, 30_000);
    const actual = (Date.now() - started) / 1000;
    expect(done.request_counts?.completed).toBe(LINES);
    const error = Math.abs(eta - actual) / actual;
    console.log(
      `estimate ETA ${eta} s, actual ${actual.toFixed(2)} s, error ${(error * 100).toFixed(1)}%`,
    );
    expect(error).toBeLessThanOrEqual(0.2);
  }, 60_000);

  it('is what `openbatch estimate --base-url` prints, and the upload is removed again', async () => {
    const path = writeJsonl(Array.from({ length: 30 }, (_, i) => chatLine(`c-${i}`, `cli ${i}`)));
    const json = captureIo();
    expect(
      await runEstimate(
        { input: path, baseUrl: t.baseURL, apiKey: 'test-key', json: true },
        json.io,
      ),
    ).toBe(0);
    const body = JSON.parse(json.stdout()) as Record<string, any>;
    expect(body).toMatchObject({
      object: 'batch.estimate',
      requests: 30,
      max_output_tokens: 30 * 50,
    });
    expect(body.eta_seconds).toBeGreaterThan(0);
    const text = captureIo();
    expect(
      await runEstimate({ input: path, baseUrl: t.baseURL, apiKey: 'test-key' }, text.io),
    ).toBe(0);
    expect(text.stdout()).toMatch(/30 requests .*\n.*\n.*\nETA: .*bound by rpm 1,800 \(config\)/);
    const files = await t.client.files.list();
    expect(files.data.some((f) => f.id === body.file_id)).toBe(false);
  });

  it('answers 404 for another project’s or a missing file, 400 for a bad endpoint', async () => {
    expect((await estimateOf('file-missing')).status).toBe(404);
    const path = writeJsonl([chatLine('x', 'x')]);
    const file = await t.client.files.create({ file: createReadStream(path), purpose: 'batch' });
    expect((await estimateOf(file.id, '?endpoint=/v1/nope')).status).toBe(400);
  });
});
