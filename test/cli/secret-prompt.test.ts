/**
 * `--api-key -` on a terminal: the key is typed at a prompt with echo off (never on the screen)
 * and still used. A real pseudo-terminal from util-linux `script`; a local HTTP server records
 * the Authorization header the CLI sent.
 */
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HiddenLine } from '../../src/cli/secret-flags.ts';
import { chatLine } from '../helpers/test-server.ts';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'openbatch.js');
const KEY = 'sk-typed-at-the-prompt-0123456789';

let server: Server | null = null;
afterAll(() => server?.close());

describe('secret prompt', () => {
  it('a raw terminal line: characters, backspace, enter and Ctrl-C', () => {
    const line = new HiddenLine();
    expect(line.feed('sk-ab')).toBe('more');
    expect(line.feed('x\u007fc')).toBe('more');
    expect(line.feed('d\r')).toBe('done');
    expect(line.value).toBe('sk-abcd');
    expect(new HiddenLine().feed('ab\u0003')).toBe('interrupted');
  });

  it('reads --api-key - on a terminal without echoing it, and sends it', async () => {
    const seen: string[] = [];
    server = createServer((req, res) => {
      seen.push(req.headers.authorization ?? '');
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          object: 'list',
          data: [],
          has_more: false,
          first_id: null,
          last_id: null,
        }),
      );
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const home = mkdtempSync(join(tmpdir(), 'openbatch-prompt-'));
    const input = join(home, 'in.jsonl');
    writeFileSync(input, `${JSON.stringify(chatLine('a', 'hi'))}\n`);
    const command = `${process.execPath} ${BIN} submit ${input} --api-key - --base-url http://127.0.0.1:${port}/v1`;
    // HOME: the job record `submit` writes goes to a temporary directory.
    const child = spawn('script', ['-qec', command, '/dev/null'], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, OPENAI_API_KEY: '', HOME: home },
    });
    let screen = '';
    const onOutput = (d: Buffer) => {
      screen += d.toString();
      if (screen.includes('api-key:') && !child.stdin.writableEnded) child.stdin.end(`${KEY}\r`);
    };
    child.stdout.on('data', onOutput);
    child.stderr.on('data', onOutput);
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      child.once('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    expect(screen).toContain('api-key:');
    expect(screen).not.toContain(KEY);
    expect(seen).toContain(`Bearer ${KEY}`);
    expect(code).not.toBeNull();
    rmSync(home, { recursive: true, force: true });
  }, 30_000);
});
