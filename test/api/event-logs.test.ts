import { spawn } from 'node:child_process';
import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { captureLogger, type LogEntry } from '../helpers/capture-logger.ts';
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

const events = (entries: LogEntry[], event: string): Record<string, unknown>[] =>
  entries.filter((e) => e.fields.event === event).map((e) => e.fields);

async function submit(s: TestServer, lines: (object | string)[]) {
  const file = await s.client.files.create({
    file: createReadStream(writeJsonl(lines)),
    purpose: 'batch',
  });
  const batch = await s.client.batches.create({
    input_file_id: file.id,
    endpoint: '/v1/chat/completions',
    completion_window: '24h',
  });
  return { file, batch };
}

describe('domain event log lines', () => {
  it('logs uploads, creations, every status change, validation failures and cancels', async () => {
    const log = captureLogger();
    server = await startTestServer({ logger: log, sim: { latencyMs: 5 } });
    const ok = await submit(server, [chatLine('a', 'hi'), chatLine('b', 'there')]);
    expect((await waitForBatch(server.client, ok.batch.id)).status).toBe('completed');

    const uploaded = events(log.entries, 'file.uploaded').find((e) => e.file_id === ok.file.id);
    expect(uploaded).toMatchObject({
      project: 'default',
      purpose: 'batch',
      filename: 'input.jsonl',
    });
    expect(uploaded?.request_id).toMatch(/^req_/);
    expect(events(log.entries, 'batch.created')).toContainEqual(
      expect.objectContaining({ batch_id: ok.batch.id, input_file_id: ok.file.id }),
    );
    const statuses = events(log.entries, 'batch.status')
      .filter((e) => e.batch_id === ok.batch.id)
      .map((e) => e.status);
    expect(statuses).toEqual(['in_progress', 'finalizing', 'completed']);

    const bad = await submit(server, [chatLine('x', 'fine'), '{"custom_id": "broken", "method"']);
    expect((await waitForBatch(server.client, bad.batch.id)).status).toBe('failed');
    const failed = events(log.entries, 'batch.status').find((e) => e.batch_id === bad.batch.id);
    expect(failed).toMatchObject({
      status: 'failed',
      errors: 1,
      first_error: { code: 'invalid_json_line', line: 2 },
    });

    const slow = await submit(server, [chatLine('s', 'slow [sim:latency=3000]')]);
    await waitForBatch(server.client, slow.batch.id, 10_000, (s) => s === 'in_progress');
    await server.client.batches.cancel(slow.batch.id);
    expect(events(log.entries, 'batch.cancel')).toContainEqual(
      expect.objectContaining({
        batch_id: slow.batch.id,
        status: 'cancelling',
        project: 'default',
      }),
    );
    expect((await waitForBatch(server.client, slow.batch.id)).status).toBe('cancelled');
    expect(
      events(log.entries, 'batch.status')
        .filter((e) => e.batch_id === slow.batch.id)
        .at(-1),
    ).toMatchObject({ status: 'cancelled' });
  });

  it('logs a limiter change when the upstream states its rate limits', async () => {
    const log = captureLogger();
    server = await startTestServer({ logger: log, sim: { latencyMs: 5, rpm: 6000 } });
    const { batch } = await submit(server, [chatLine('a', 'hi'), chatLine('b', 'there')]);
    expect((await waitForBatch(server.client, batch.id)).status).toBe('completed');
    // The supervisor compares limiter state every tick (50 ms here): give it two.
    await new Promise((resolve) => setTimeout(resolve, 150));
    const changed = events(log.entries, 'limiter.changed');
    expect(changed.length).toBeGreaterThan(0);
    expect(changed[0]).toMatchObject({
      upstream: 'default',
      changes: expect.objectContaining({ 'gpt-4o-mini.rpm': [null, 6000] }),
    });
  });
});

describe('--log-format pretty', () => {
  it('prints readable lines, not JSON', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'openbatch-pretty-'));
    const child = spawn(
      process.execPath,
      [
        join(import.meta.dirname, '../../bin/openbatch.js'),
        'serve',
        '--port',
        '0',
        '--data-dir',
        dataDir,
        '--log-format',
        'pretty',
      ],
      {
        env: {
          ...process.env,
          OPENBATCH_LOG_LEVEL: 'info',
          OPENBATCH_UPSTREAM_URL: 'http://127.0.0.1:9/v1',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      const base = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`not ready:\n${out}${err}`)), 45_000);
        child.stdout.on('data', () => {
          const match = /listening on (http:\/\/\S+)\/v1/.exec(out);
          if (match?.[1]) {
            clearTimeout(timer);
            resolve(match[1]);
          }
        });
      });
      const form = new FormData();
      form.append('purpose', 'batch');
      form.append('file', new Blob([`${JSON.stringify(chatLine('a', 'hi'))}\n`]), 'in.jsonl');
      expect((await fetch(`${base}/v1/files`, { method: 'POST', body: form })).status).toBe(200);
    } finally {
      child.kill('SIGTERM');
      await exited;
      rmSync(dataDir, { recursive: true, force: true });
    }
    expect(err).toMatch(/INFO.*file uploaded/);
    expect(err).toContain('file.uploaded');
    expect(err).not.toMatch(/^\{"level"/m);
  });
});
