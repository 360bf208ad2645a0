import { createReadStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { modelOfBody } from '../../src/metrics/instrument-upstream.ts';
import {
  chatLine,
  startTestServer,
  waitForBatch,
  writeJsonl,
  type TestServer,
} from '../helpers/test-server.ts';

let server: TestServer | null = null;
afterEach(async () => {
  await server?.close();
  server = null;
});

/** The value of one sample line, e.g. `openbatch_lines_total{outcome="completed"}`. */
function sample(text: string, series: string): number | null {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? null : Number(line.slice(series.length + 1));
}

const metricsUrl = (s: TestServer): string => s.baseURL.replace(/\/v1$/, '/metrics');

async function runBatch(s: TestServer, lines: object[]): Promise<string> {
  const file = await s.client.files.create({
    file: createReadStream(writeJsonl(lines)),
    purpose: 'batch',
  });
  const batch = await s.client.batches.create({
    input_file_id: file.id,
    endpoint: '/v1/chat/completions',
    completion_window: '24h',
  });
  return batch.id;
}

describe('/metrics', () => {
  it('counts batches, lines by outcome, upstream calls, durations and tokens', async () => {
    server = await startTestServer({ sim: { latencyMs: 5 } });
    const ok = ['a', 'b', 'c', 'd'].map((id) => chatLine(id, `hello ${id}`));
    const bad = chatLine('bad', 'refused [sim:status=400;id=bad]');
    const id = await runBatch(server, [...ok, bad]);
    const batch = await waitForBatch(server.client, id);
    expect(batch.status).toBe('completed');

    const res = await fetch(metricsUrl(server));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(sample(text, 'openbatch_batches{status="completed"}')).toBe(1);
    expect(sample(text, 'openbatch_lines_total{outcome="completed"}')).toBe(4);
    expect(sample(text, 'openbatch_lines_total{outcome="failed"}')).toBe(1);
    const up = 'upstream="default",model="gpt-4o-mini"';
    expect(sample(text, `openbatch_upstream_requests_total{${up},status="200"}`)).toBe(4);
    expect(sample(text, `openbatch_upstream_requests_total{${up},status="400"}`)).toBe(1);
    expect(sample(text, `openbatch_upstream_request_duration_seconds_count{${up}}`)).toBe(5);
    expect(sample(text, 'openbatch_tokens_total{kind="input"}')).toBe(batch.usage!.input_tokens);
    expect(sample(text, 'openbatch_tokens_total{kind="output"}')).toBe(batch.usage!.output_tokens);
    expect(
      sample(text, 'openbatch_upstream_concurrency_limit{upstream="default"}'),
    ).toBeGreaterThan(0);
    expect(sample(text, 'openbatch_upstream_in_flight{upstream="default"}')).toBe(0);
    expect(text).toMatch(/^process_cpu_seconds_total /m);
    expect(text).toMatch(/^nodejs_heap_size_used_bytes /m);

    // Every series the Grafana dashboard in docs/ queries is one the server exposes.
    const dashboard = readFileSync(
      join(import.meta.dirname, '../../docs/grafana-dashboard.json'),
      'utf8',
    );
    const queried = new Set(dashboard.match(/\b(openbatch|process)_[a-z_]+/g));
    expect(queried.size).toBeGreaterThan(10);
    const exposed = new Set([...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]));
    const missing = [...queried].filter(
      (name) => !exposed.has(name.replace(/_(bucket|count|sum)$/, '')) && !exposed.has(name),
    );
    expect(missing).toEqual([]);
  });

  it('counts the lines a cancelled batch never ran as cancelled', async () => {
    server = await startTestServer({ sim: { latencyMs: 2_000 } });
    const id = await runBatch(
      server,
      Array.from({ length: 300 }, (_, i) => chatLine(`slow-${i}`, `wait ${i}`)),
    );
    await waitForBatch(server.client, id, 20_000, (s) => s === 'in_progress');
    await server.client.batches.cancel(id);
    const batch = await waitForBatch(server.client, id, 30_000);
    expect(batch.status).toBe('cancelled');
    const text = await (await fetch(metricsUrl(server))).text();
    const counts = batch.request_counts!;
    expect(sample(text, 'openbatch_batches{status="cancelled"}')).toBe(1);
    expect(sample(text, 'openbatch_lines_total{outcome="cancelled"}')).toBe(
      counts.total - counts.completed - counts.failed,
    );
    expect(sample(text, 'openbatch_lines_total{outcome="cancelled"}')).toBeGreaterThan(0);
  });

  it('with keys, answers 401 without one, 403 to a project key and 200 to an admin key', async () => {
    server = await startTestServer({
      env: { OPENBATCH_API_KEYS: 'team-key-0123456789:team,ops-key-0123456789:ops:admin' },
    });
    expect((await fetch(metricsUrl(server))).status).toBe(401);
    const asProject = await fetch(metricsUrl(server), {
      headers: { authorization: 'Bearer team-key-0123456789' },
    });
    expect(asProject.status).toBe(403);
    expect(((await asProject.json()) as { error: { message: string } }).error.message).toContain(
      '--admin',
    );
    const asAdmin = await fetch(metricsUrl(server), {
      headers: { authorization: 'Bearer ops-key-0123456789' },
    });
    expect(asAdmin.status).toBe(200);
    expect(await asAdmin.text()).toContain('openbatch_batches');
  });
});

describe('modelOfBody', () => {
  it('reads the top-level model wherever it sits, and says unknown without one', () => {
    expect(modelOfBody('{"model":"gpt-4o-mini","messages":[]}')).toBe('gpt-4o-mini');
    expect(modelOfBody('{"messages":[{"role":"user","content":"hi"}], "model" : "llama-3"}')).toBe(
      'llama-3',
    );
    expect(modelOfBody('{"input":"x"}')).toBe('unknown');
  });
});
