import { spawn } from 'node:child_process';
import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { chatLine, readLines, waitForBatch, writeJsonl } from '../helpers/test-server.ts';

const ROOT = join(import.meta.dirname, '..', '..');

describe('the README start command', () => {
  it('`npm start` with no upstream serves the seed workflow against the built-in simulator', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'openbatch-start-'));
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      OPENBATCH_PORT: '0',
      OPENBATCH_DATA_DIR: dataDir,
      OPENBATCH_LOG_LEVEL: 'warn',
    };
    for (const key of [
      'OPENBATCH_UPSTREAM_URL',
      'OPENAI_API_KEY',
      'OPENBATCH_CONFIG',
      'OPENBATCH_API_KEYS',
    ])
      delete env[key];
    const child = spawn('npm', ['start', '--silent'], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<string>((resolve) =>
      child.once('exit', (code, signal) => resolve(`${code ?? signal}`)),
    );
    try {
      const baseURL = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`not ready:\n${out}`)), 45_000);
        child.stdout.on('data', () => {
          const match = /openbatch listening on (http:\/\/\S+\/v1)/.exec(out);
          if (match?.[1]) {
            clearTimeout(timer);
            resolve(match[1]);
          }
        });
      });
      expect(out).toContain('NO UPSTREAM CONFIGURED');
      expect(out).toMatch(/SIMULATOR/);
      expect(baseURL).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);

      const client = new OpenAI({ apiKey: 'anything', baseURL, maxRetries: 0 });
      const ids = ['request-1', 'request-2', 'request-3'];
      const file = await client.files.create({
        file: createReadStream(writeJsonl(ids.map((id) => chatLine(id, `Hello ${id}`)))),
        purpose: 'batch',
      });
      const batch = await client.batches.create({
        input_file_id: file.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      });
      const done = await waitForBatch(client, batch.id, 30_000);
      expect(done.status).toBe('completed');
      const lines = await readLines(client, done.output_file_id);
      expect(lines.map((l) => l.custom_id).sort()).toEqual(ids);
    } finally {
      // SIGTERM the whole group: npm itself reports the signal, the server drains and exits 0
      // (the exit code of `serve` is asserted in test/engine/restart.test.ts).
      process.kill(-child.pid!, 'SIGTERM');
      expect(['0', 'SIGTERM']).toContain(await exited);
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 90_000);
});
