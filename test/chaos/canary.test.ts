import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createSimulator, type Simulator } from '../../src/simulator/simulator.ts';
import {
  FAST_ENGINE_ENV,
  Servers,
  jsonlOf,
  removeDir,
  sleep,
  taggedLine,
  tempDir,
} from './harness/chaos-env.ts';

/**
 * Secrets canary (A8 #19, design.md §4.10): a unique upstream key and a unique client key, a
 * server at log level debug, a batch with failing lines, passthrough calls and error paths. Then
 * neither canary may appear in the server's stdout/stderr, in any file of the data directory
 * (the database included: only the sha256 of the client key may be there), or in any HTTP answer.
 */

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...filesUnder(path));
    else out.push(path);
  }
  return out;
}

describe('secrets canary', () => {
  const servers = new Servers();
  let sim: Simulator | null = null;
  const dataDir = tempDir('canary');
  afterAll(async () => {
    await servers.killAll();
    await sim?.close();
    removeDir(dataDir);
  });

  it('never writes either key to logs, files, the database or HTTP answers', async () => {
    const upstreamKey = `sk-canary-upstream-${randomBytes(12).toString('hex')}`;
    const clientKey = `sk-canary-client-${randomBytes(12).toString('hex')}`;
    const adminKey = `sk-canary-admin-${randomBytes(12).toString('hex')}`;
    sim = createSimulator({ latencyMs: 5 });
    const simUrl = (await sim.listen(0)).url;
    const proc = await servers.spawn(dataDir, {
      ...FAST_ENGINE_ENV,
      OPENBATCH_UPSTREAM_URL: `${simUrl}/v1`,
      OPENBATCH_UPSTREAM_API_KEY: upstreamKey,
      OPENBATCH_API_KEYS: `${clientKey}:canary,${adminKey}:ops:admin`,
      // The batch leaves 3 files (input, output, errors): the next upload meets the quota.
      OPENBATCH_MAX_FILES: '3',
      OPENBATCH_LOG_LEVEL: 'debug',
      OPENBATCH_MAX_ATTEMPTS: '2',
    });
    const base = proc.baseURL;
    const received: string[] = [];
    const http = async (
      method: string,
      path: string,
      body?: string | FormData,
      key: string | null = clientKey,
      headers: Record<string, string> = {},
    ): Promise<{ status: number; text: string }> => {
      const res = await fetch(`${base}${path}`, {
        method,
        body: body ?? null,
        headers: { ...(key === null ? {} : { authorization: `Bearer ${key}` }), ...headers },
      });
      const text = await res.text();
      received.push(`${method} ${path} ${res.status} ${JSON.stringify([...res.headers])} ${text}`);
      return { status: res.status, text };
    };
    const postJson = (path: string, value: unknown, key: string | null = clientKey) =>
      http('POST', path, JSON.stringify(value), key, { 'content-type': 'application/json' });

    // A batch with answers, an upstream 401, a retried 500 and a transport reset.
    const form = new FormData();
    form.append(
      'file',
      new Blob([
        jsonlOf([
          taggedLine('c-ok'),
          taggedLine('c-401', 'status=401'),
          taggedLine('c-500', 'status=500x1'),
          taggedLine('c-reset', 'reset'),
          taggedLine('c-quota', 'status=429x1'),
        ]),
      ]),
      'canary.jsonl',
    );
    form.append('purpose', 'batch');
    const upload = JSON.parse((await http('POST', '/files', form)).text) as { id: string };
    const created = JSON.parse(
      (
        await postJson('/batches', {
          input_file_id: upload.id,
          endpoint: '/v1/chat/completions',
          completion_window: '24h',
        })
      ).text,
    ) as { id: string };
    let batch: { status: string; output_file_id: string | null; error_file_id: string | null } = {
      status: 'validating',
      output_file_id: null,
      error_file_id: null,
    };
    for (let i = 0; i < 300 && !['completed', 'failed'].includes(batch.status); i++) {
      await sleep(100);
      batch = JSON.parse((await http('GET', `/batches/${created.id}`)).text) as typeof batch;
    }
    expect(batch.status).toBe('completed');
    await http('GET', `/files/${batch.output_file_id}/content`);
    await http('GET', `/files/${batch.error_file_id}/content`);
    await http('GET', '/files');
    await http('GET', '/batches');

    // A batch that fails validation on a line carrying a credential as a routing field (its first
    // error is logged, the credential never), and a batch cancelled while it runs; in the admin
    // key's project, so the member project's file quota stays for the quota check below.
    const lineSecret = `sk-canary-line-${randomBytes(12).toString('hex')}`;
    const rejected = new FormData();
    rejected.append(
      'file',
      new Blob([
        jsonlOf([
          taggedLine('v-ok'),
          {
            custom_id: 'v-bad',
            method: 'POST',
            url: '/v1/chat/completions',
            body: { model: 'gpt-4o-mini', messages: [], api_key: lineSecret },
          },
        ]),
      ]),
      'rejected.jsonl',
    );
    rejected.append('purpose', 'batch');
    const rejectedFile = JSON.parse((await http('POST', '/files', rejected, adminKey)).text) as {
      id: string;
    };
    const invalid = JSON.parse(
      (
        await postJson(
          '/batches',
          {
            input_file_id: rejectedFile.id,
            endpoint: '/v1/chat/completions',
            completion_window: '24h',
          },
          adminKey,
        )
      ).text,
    ) as { id: string };
    const slowForm = new FormData();
    slowForm.append('file', new Blob([jsonlOf([taggedLine('c-slow', 'latency=5000')])]), 's.jsonl');
    slowForm.append('purpose', 'batch');
    const slowFile = JSON.parse((await http('POST', '/files', slowForm, adminKey)).text) as {
      id: string;
    };
    const slow = JSON.parse(
      (
        await postJson(
          '/batches',
          {
            input_file_id: slowFile.id,
            endpoint: '/v1/chat/completions',
            completion_window: '24h',
          },
          adminKey,
        )
      ).text,
    ) as { id: string };
    for (let i = 0; i < 100; i++) {
      const s = JSON.parse(
        (await http('GET', `/batches/${invalid.id}`, undefined, adminKey)).text,
      ) as {
        status: string;
      };
      if (s.status === 'failed') break;
      await sleep(100);
    }
    await http('POST', `/batches/${slow.id}/cancel`, undefined, adminKey);
    await http('GET', '/readyz');
    await http('GET', '/metrics', undefined, adminKey);

    // Passthrough: an answer, an upstream 401, embeddings, models, a stream.
    const chat = (content: string, extra: Record<string, unknown> = {}) => ({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content }],
      ...extra,
    });
    await postJson('/chat/completions', chat('hi'));
    await postJson('/chat/completions', chat('denied [sim:status=401]'));
    await postJson('/chat/completions', chat('stream please', { stream: true }));
    await postJson('/embeddings', { model: 'text-embedding-3-small', input: 'x' });
    await http('GET', '/models');

    // Error paths: no key, a wrong key, the upstream key pasted as client key, 404s, bad JSON.
    await http('GET', '/batches', undefined, null);
    await http('GET', '/batches', undefined, `${clientKey}x`);
    await http('GET', '/batches', undefined, upstreamKey);
    await postJson('/chat/completions', chat('x'), upstreamKey);
    await http('GET', '/batches/batch_does_not_exist');
    await http('GET', '/files/file-nope/content');
    await http('GET', '/no/such/route');
    await http('POST', '/batches', '{not json', clientKey, { 'content-type': 'application/json' });
    await postJson(
      '/chat/completions',
      chat('x', { api_key: 'y', api_base: 'http://127.0.0.1:1' }),
    );
    // Keys pasted into routing fields, in case variants and nested objects, are refused unechoed.
    await postJson('/chat/completions', chat('x', { API_KEY: upstreamKey }));
    await postJson('/chat/completions', chat('x', { metadata: { Api_Key: clientKey } }));
    // The new paths: /admin for a member and an admin key, a quota 429, an open-mode-only refusal
    // that keyed mode ignores (a foreign Origin), a non-JSON body.
    await http('GET', '/../admin/scheduler');
    await http('GET', '/../admin/scheduler', undefined, adminKey);
    const extra = new FormData();
    extra.append('file', new Blob([jsonlOf([taggedLine('c-extra')])]), 'extra.jsonl');
    extra.append('purpose', 'batch');
    expect((await http('POST', '/files', extra)).status).toBe(429);
    await http('GET', '/batches', undefined, clientKey, { origin: 'http://evil.example' });
    await http('POST', '/chat/completions', JSON.stringify(chat('x')), clientKey, {
      'content-type': 'text/plain',
    });

    proc.child.kill('SIGTERM');
    expect(await proc.exited).toBe(0);

    const sha = (await import('node:crypto')).createHash('sha256').update(clientKey).digest('hex');
    const hits: string[] = [];
    const scan = (where: string, data: Buffer | string) => {
      const buf = typeof data === 'string' ? Buffer.from(data) : data;
      for (const [name, secret] of [
        ['upstream key', upstreamKey],
        ['client key', clientKey],
        ['admin key', adminKey],
      ] as const) {
        if (buf.includes(secret)) hits.push(`${name} in ${where}`);
        // Also the secret without its prefix, in case something trimmed or masked only the start.
        if (buf.includes(secret.slice(-24))) hits.push(`${name} (tail) in ${where}`);
      }
    };
    scan('server stdout/stderr', proc.output());
    const files = filesUnder(dataDir);
    for (const f of files) scan(f.slice(dataDir.length), readFileSync(f));
    received.forEach((r, i) => scan(`HTTP answer #${i}: ${r.slice(0, 60)}`, r));
    const logLines = proc.output().split('\n').filter(Boolean).length;
    const dbHasHash = files.some((f) => readFileSync(f).includes(sha));
    console.log(
      `[canary] scanned ${logLines} log lines, ${files.length} files under the data dir, ` +
        `${received.length} HTTP answers; hits=${hits.length}; client key sha256 in the data dir: ${String(dbHasHash)}`,
    );
    expect(hits).toEqual([]);
    expect(logLines).toBeGreaterThan(0);
    // The access log saw the refused calls too (without their keys: the scan above).
    expect(proc.output()).toMatch(/"status":401.*"msg":"request"/);
    expect(proc.output()).toMatch(/"status":429.*"msg":"request"/);

    // The domain event lines were written (so the scan above covered them).
    const entries = proc
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const event = (name: string, batchId?: string) =>
      entries.find((e) => e.event === name && (batchId === undefined || e.batch_id === batchId));
    expect(event('file.uploaded')).toMatchObject({ project: 'canary', purpose: 'batch' });
    expect(event('batch.created', created.id)).toMatchObject({ project: 'canary' });
    expect(event('batch.created', created.id)?.request_id).toMatch(/^req_/);
    expect(invalid.id).toMatch(/^batch_/);
    expect(event('batch.status', invalid.id)).toMatchObject({
      status: 'failed',
      first_error: { line: 2, param: 'body.api_key' },
    });
    expect(event('batch.cancel', slow.id)).toMatchObject({ status: 'cancelling' });
    expect(proc.output()).not.toContain(lineSecret);
  }, 120_000);
});
