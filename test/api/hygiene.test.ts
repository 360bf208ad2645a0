import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveSecretFlags } from '../../src/cli/secret-flags.ts';
import { createServerRuntime, type ServerRuntime } from '../../src/compose.ts';
import { loadConfig } from '../../src/config/config.ts';
import type { Logger } from '../../src/lib/logger.ts';
import { createSimulator, type Simulator } from '../../src/simulator/simulator.ts';
import { chatLine, startTestServer, type TestServer } from '../helpers/test-server.ts';

const KEY = 'sk-hygiene-key-0123456789-SECRET';

describe('every answer carries nosniff; the data directory is private', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(async () => t.close());

  it('sets X-Content-Type-Options: nosniff on JSON, 404s, downloads and upstream errors', async () => {
    const file = await t.client.files.create({
      file: await toFile(Buffer.from(`${JSON.stringify(chatLine('a', 'hi'))}\n`), 'a.jsonl'),
      purpose: 'batch',
    });
    const answers = [
      await fetch(`${t.baseURL}/files`),
      await fetch(`${t.baseURL}/no-such-route`),
      await fetch(`${t.baseURL}/files/${file.id}/content`),
      await fetch(`${t.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'gpt-4o-mini',
          messages: [{ role: 'user', content: '[sim:status=400] <html>' }],
        }),
      }),
      await fetch(t.baseURL.replace(/\/v1$/, '/health')),
    ];
    expect(answers.map((r) => r.status)).toEqual([200, 404, 200, 400, 200]);
    for (const r of answers) expect(r.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it('creates the data directory 0700 and its files 0600', () => {
    expect(statSync(t.dataDir).mode & 0o777).toBe(0o700);
    const files: string[] = [];
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) {
          expect(statSync(path).mode & 0o077, path).toBe(0);
          walk(path);
        } else files.push(path);
      }
    };
    walk(t.dataDir);
    // On PostgreSQL (the `postgres` project) there is no database file in the data directory.
    if (process.env.OPENBATCH_TEST_STORE !== 'postgres')
      expect(files.some((f) => f.endsWith('openbatch.db'))).toBe(true);
    for (const f of files) expect(statSync(f).mode & 0o077, f).toBe(0);
  });
});

describe('access log', () => {
  let sim: Simulator;
  let runtime: ServerRuntime;
  let dataDir: string;
  const lines: { fields: Record<string, unknown>; message: string }[] = [];
  const logger: Logger = {
    debug: () => undefined,
    info: (fields, message) => void lines.push({ fields, message }),
    warn: () => undefined,
    error: () => undefined,
    scope: () => logger,
  };
  beforeAll(async () => {
    sim = createSimulator({});
    const { url } = await sim.listen(0);
    dataDir = mkdtempSync(join(tmpdir(), 'openbatch-log-'));
    const config = loadConfig(
      { dataDir, port: 0 },
      { OPENBATCH_UPSTREAM_URL: `${url}/v1`, OPENBATCH_API_KEYS: `${KEY}:team` },
    );
    runtime = await createServerRuntime(config, logger);
  });
  afterAll(async () => {
    await runtime.close();
    await sim.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('writes one line per request with method, path, status, project and duration; never a key', async () => {
    const wrong = 'sk-wrong-key-0123456789-SECRET';
    await runtime.app.request('http://127.0.0.1/v1/files', {
      headers: { authorization: `Bearer ${KEY}` },
    });
    await runtime.app.request('http://127.0.0.1/v1/batches', {
      headers: { authorization: `Bearer ${wrong}` },
    });
    const requests = lines.filter((l) => l.message === 'request').map((l) => l.fields);
    expect(requests).toEqual([
      {
        method: 'GET',
        path: '/v1/files',
        status: 200,
        project: 'team',
        durationMs: expect.any(Number),
        request_id: expect.stringMatching(/^req_/),
      },
      {
        method: 'GET',
        path: '/v1/batches',
        status: 401,
        project: null,
        durationMs: expect.any(Number),
        request_id: expect.stringMatching(/^req_/),
      },
    ]);
    const logged = JSON.stringify(lines);
    expect(logged).not.toContain('SECRET');
  });
});

describe('keys and secrets', () => {
  it('refuses static keys shorter than 16 characters at start-up', () => {
    expect(() => loadConfig({}, { OPENBATCH_API_KEYS: 'short-key:team' })).toThrow(
      /at least 16 characters/,
    );
    expect(loadConfig({}, { OPENBATCH_API_KEYS: `${KEY}:team:admin` }).apiKeys.get(KEY)).toEqual({
      project: 'team',
      role: 'admin',
    });
  });

  it('warns about a key given as a flag, without echoing it, and reads `-` from stdin', async () => {
    const err: string[] = [];
    const io = { stdout: () => undefined, stderr: (s: string) => void err.push(s) };
    const argv = ['node', 'openbatch', 'status', 'last', '--api-key', KEY];
    expect(await resolveSecretFlags(argv, io, async () => 'unused')).toEqual(argv);
    expect(err.join('')).toMatch(/--api-key puts the key in the process list.*OPENAI_API_KEY/);
    expect(err.join('')).not.toContain('SECRET');
    err.length = 0;
    const typed = await resolveSecretFlags(
      ['node', 'openbatch', 'run', 'x.jsonl', '--upstream-api-key=-'],
      io,
      async () => ` ${KEY}\n`,
    );
    expect(typed.at(-1)).toBe(`--upstream-api-key=${KEY}`);
    expect(err).toEqual([]);
  });
});
