import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnServer, type ServerProcess } from '../helpers/server-process.ts';
import {
  chatLine,
  startTestServer,
  waitForBatch,
  writeJsonl,
  type TestServer,
} from '../helpers/test-server.ts';

type RateLimitError = InstanceType<typeof OpenAI.RateLimitError>;

async function refused(promise: Promise<unknown>): Promise<RateLimitError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OpenAI.RateLimitError);
  return err as RateLimitError;
}

/** A socket that sent a request's headers and `sent` bytes of its body, then waits. */
function partialRequest(url: string, head: string, sent: string): Promise<Socket> {
  const { port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), '127.0.0.1', () => {
      socket.write(head + sent);
      setTimeout(() => resolve(socket), 200);
    });
    socket.on('error', () => undefined);
  });
}

const jsonl = (n: number) =>
  toFile(Buffer.from(`${JSON.stringify(chatLine(`r${n}`, 'hi'))}\n`), `f${n}.jsonl`);

describe('per-project quotas answer 429 with clear messages', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({
      env: {
        OPENBATCH_MAX_ACTIVE_BATCHES: '2',
        OPENBATCH_MAX_FILES: '4',
        OPENBATCH_MAX_CONCURRENT_UPLOADS: '1',
      },
    });
  });
  afterAll(async () => t.close());

  it('refuses a third active batch, and accepts one again once a batch ended', async () => {
    const file = await t.client.files.create({
      file: createReadStream(writeJsonl([chatLine('a', '[sim:latency=5000] hi')])),
      purpose: 'batch',
    });
    const create = () =>
      t.client.batches.create({
        input_file_id: file.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      });
    const first = await create();
    await create();
    const err = await refused(create());
    expect(err.status).toBe(429);
    expect(err.code).toBe('quota_exceeded');
    expect(err.message).toMatch(
      /2 active batches, the most allowed \(OPENBATCH_MAX_ACTIVE_BATCHES=2\)/,
    );
    await t.client.batches.cancel(first.id);
    await waitForBatch(t.client, first.id, 20_000);
    expect((await create()).status).toBe('validating');
  }, 30_000);

  it('refuses a file past the files quota', async () => {
    const have = (await t.client.files.list()).data.length;
    for (let i = have; i < 4; i++)
      await t.client.files.create({ file: await jsonl(i), purpose: 'batch' });
    const err = await refused(t.client.files.create({ file: await jsonl(9), purpose: 'batch' }));
    expect(err.message).toMatch(/stores 4 files, the most allowed \(OPENBATCH_MAX_FILES=4\)/);
  });

  it('refuses a second concurrent upload of the same project', async () => {
    for (const f of (await t.client.files.list()).data) await t.client.files.delete(f.id);
    const boundary = 'b0undary';
    const head =
      `POST /v1/files HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer test-key\r\n` +
      `Content-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: 100000\r\n\r\n`;
    const slow = await partialRequest(t.baseURL, head, `--${boundary}\r\n`);
    try {
      const err = await refused(t.client.files.create({ file: await jsonl(1), purpose: 'batch' }));
      expect(err.message).toMatch(/1 uploads in progress/);
    } finally {
      slow.destroy();
    }
  });
});

describe('stored bytes quota', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ env: { OPENBATCH_MAX_STORED_BYTES: '400' } });
  });
  afterAll(async () => t.close());

  it('refuses a file that would take the project past its bytes', async () => {
    await t.client.files.create({ file: await jsonl(1), purpose: 'batch' });
    await t.client.files.create({ file: await jsonl(2), purpose: 'batch' });
    const err = await refused(t.client.files.create({ file: await jsonl(3), purpose: 'batch' }));
    expect(err.message).toMatch(/OPENBATCH_MAX_STORED_BYTES=400/);
    expect((await t.client.files.list()).data.length).toBe(2);
  });
});

describe('server-wide caps', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ env: { OPENBATCH_MAX_BODY_BUFFER_BYTES: '1000000' } });
  });
  afterAll(async () => t.close());

  it('answers 429 when JSON bodies in memory would pass the budget', async () => {
    const head =
      'POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
      'Content-Length: 2000000\r\n\r\n';
    const slow = await partialRequest(t.baseURL, head, `{"model":"m","x":"${'a'.repeat(700_000)}`);
    try {
      const err = await refused(
        t.client.chat.completions.create({
          model: 'gpt-4o-mini',
          messages: [{ role: 'user', content: 'b'.repeat(400_000) }],
        }),
      );
      expect(err.code).toBe('server_busy');
      // A small body still fits.
      const ok = await t.client.chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'hi' }],
      });
      expect(ok.object).toBe('chat.completion');
    } finally {
      slow.destroy();
    }
  });
});

describe('openbatch serve: connection cap and timeouts', () => {
  const dirs: string[] = [];
  const procs: ServerProcess[] = [];
  afterAll(async () => {
    for (const p of procs) {
      p.child.kill('SIGKILL');
      await p.exited;
    }
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const dataDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'openbatch-caps-'));
    dirs.push(dir);
    return dir;
  };

  it('starts with a request timeout under 30 s and answers a connection past the cap with 429', async () => {
    const proc = await spawnServer(dataDir(), {
      OPENBATCH_UPSTREAM_URL: 'http://127.0.0.1:9/v1',
      OPENBATCH_HTTP_REQUEST_TIMEOUT_MS: '10000',
      OPENBATCH_MAX_CONNECTIONS: '2',
    });
    procs.push(proc);
    const { port } = new URL(proc.baseURL);
    const idle: Socket[] = [];
    for (let i = 0; i < 2; i++) {
      idle.push(
        await new Promise<Socket>((resolve) => {
          const s = connect(Number(port), '127.0.0.1', () => resolve(s));
        }),
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    const res = await fetch(`${proc.baseURL}/files`);
    expect(res.status).toBe(429);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
      'too_many_connections',
    );
    for (const s of idle) s.destroy();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect((await fetch(`${proc.baseURL}/files`)).status).toBe(200);
  }, 60_000);

  it('refuses a request timeout under 1 s at start-up with the setting named', async () => {
    const started = spawnServer(dataDir(), {
      OPENBATCH_UPSTREAM_URL: 'http://127.0.0.1:9/v1',
      OPENBATCH_HTTP_REQUEST_TIMEOUT_MS: '500',
    });
    await expect(started).rejects.toThrow(
      /OPENBATCH_HTTP_REQUEST_TIMEOUT_MS: expected at least 1000/,
    );
  }, 60_000);
});
