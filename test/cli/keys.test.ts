import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  createReadStream,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import OpenAI from 'openai';
import { afterAll, describe, expect, it } from 'vitest';
import { chatLine, startTestServer, writeJsonl } from '../helpers/test-server.ts';

const ROOT = join(import.meta.dirname, '..', '..');

interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Environment without any openbatch/OpenAI settings from the outer shell. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('OPENBATCH_') || k.startsWith('OPENAI_')) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

/** Runs `node bin/openbatch.js …`; kills the child (by its pid) if it outlives `timeoutMs`. */
function runCli(
  args: string[],
  extraEnv: Record<string, string> = {},
  timeoutMs = 30_000,
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/openbatch.js', ...args], {
      cwd: ROOT,
      env: cleanEnv(extraEnv),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

const tmpDirs: string[] = [];
function freshDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'openbatch-cli-'));
  tmpDirs.push(dir);
  return dir;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((p) => join(dir, p))
    .filter((p) => statSync(p).isFile());
}

afterAll(() => {
  for (const dir of tmpDirs) rmSync(dir, { recursive: true, force: true });
});

describe('openbatch keys create', () => {
  it('prints one sk-ob- key, stores only its sha256, and the key authenticates as its project', async () => {
    const dataDir = freshDir();
    const created = await runCli(['keys', 'create', '--project', 'alpha', '--data-dir', dataDir]);
    expect(created.timedOut).toBe(false);
    expect(created.code, created.stderr).toBe(0);
    const lines = created.stdout.split('\n');
    expect(lines.length).toBe(2);
    expect(lines[1]).toBe('');
    const key = lines[0]!;
    expect(key.startsWith('sk-ob-')).toBe(true);
    expect(key).toMatch(/^sk-ob-[A-Za-z0-9_-]{20,}$/);
    expect(created.stderr).not.toContain(key);

    const other = await runCli(['keys', 'create', '--project', 'beta', '--data-dir', dataDir]);
    expect(other.code, other.stderr).toBe(0);
    const betaKey = other.stdout.trim();
    expect(betaKey.startsWith('sk-ob-')).toBe(true);
    expect(betaKey).not.toBe(key);

    // Only hashes are stored: the raw keys appear in no byte of any file of the data directory.
    const dbPath = join(dataDir, 'openbatch.db');
    expect(existsSync(dbPath)).toBe(true);
    for (const path of filesUnder(dataDir)) {
      const bytes = readFileSync(path);
      expect(bytes.includes(Buffer.from(key)), path).toBe(false);
      expect(bytes.includes(Buffer.from(betaKey)), path).toBe(false);
      expect(bytes.includes(Buffer.from(key.slice('sk-ob-'.length))), path).toBe(false);
    }
    const db = new Database(dbPath, { readonly: true });
    try {
      const rows = db.prepare('SELECT key_hash, project FROM api_keys ORDER BY project').all() as {
        key_hash: string;
        project: string;
      }[];
      const sha = (s: string) => createHash('sha256').update(s).digest('hex');
      expect(rows.map((r) => ({ key_hash: r.key_hash, project: r.project }))).toEqual([
        { key_hash: sha(key), project: 'alpha' },
        { key_hash: sha(betaKey), project: 'beta' },
      ]);
      expect(rows.every((r) => /^[0-9a-f]{64}$/.test(r.key_hash))).toBe(true);
    } finally {
      db.close();
    }

    // A server on that data directory (no OPENBATCH_API_KEYS) accepts the key as project alpha.
    const t = await startTestServer({ dataDir });
    try {
      const alpha = t.clientWithKey(key);
      const path = writeJsonl([chatLine('k-1', 'hello')]);
      const file = await alpha.files.create({ file: createReadStream(path), purpose: 'batch' });
      expect((await alpha.files.list()).data.map((f) => f.id)).toEqual([file.id]);
      expect((await t.runtime.store.getFile('alpha', file.id))?.id).toBe(file.id);
      expect(await t.runtime.store.getFile('beta', file.id)).toBeNull();
      await expect(t.clientWithKey(betaKey).files.retrieve(file.id)).rejects.toBeInstanceOf(
        OpenAI.NotFoundError,
      );

      // Another key is refused.
      const wrong = await t
        .clientWithKey('sk-ob-not-a-real-key-000000000000')
        .files.list()
        .then(
          () => null,
          (e: unknown) => e,
        );
      expect(wrong).toBeInstanceOf(OpenAI.AuthenticationError);
      expect((wrong as InstanceType<typeof OpenAI.AuthenticationError>).status).toBe(401);
      await expect(t.client.files.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
      const noAuth = await fetch(`${t.baseURL}/files`);
      expect(noAuth.status).toBe(401);
    } finally {
      await t.close();
    }
  });

  it('--admin creates a key that sees every upstream key on /admin; a member key does not', async () => {
    const dataDir = freshDir();
    const make = async (args: string[]) => {
      const res = await runCli(['keys', 'create', ...args, '--data-dir', dataDir]);
      expect(res.code).toBe(0);
      return res.stdout.trim();
    };
    const adminKey = await make(['--project', 'ops', '--admin']);
    const memberKey = await make(['--project', 'team']);
    const t = await startTestServer({ dataDir });
    try {
      await t.clientWithKey(memberKey).chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'hi' }],
      });
      const scheduler = async (key: string) => {
        const res = await fetch(t.baseURL.replace(/\/v1$/, '/admin/scheduler'), {
          headers: { authorization: `Bearer ${key}` },
        });
        return (await res.json()) as { upstreams: { keys?: unknown[] }[] };
      };
      expect((await scheduler(adminKey)).upstreams[0]!.keys).toBeDefined();
      expect((await scheduler(memberKey)).upstreams[0]!.keys).toBeUndefined();
    } finally {
      await t.close();
    }
  });

  it('refuses an invalid project name with a non-zero exit and stores nothing', async () => {
    const dataDir = freshDir();
    for (const project of ['has space', 'semi;colon', 'x'.repeat(65), '']) {
      const res = await runCli(['keys', 'create', '--project', project, '--data-dir', dataDir]);
      expect(res.timedOut).toBe(false);
      expect(res.code, `project ${JSON.stringify(project)}`).not.toBe(0);
      expect(res.stdout).not.toMatch(/sk-ob-/);
    }
    expect(existsSync(join(dataDir, 'openbatch.db'))).toBe(false);
  });
});

describe('openbatch serve on a public address without keys', () => {
  it('exits non-zero with a message about API keys', async () => {
    const dataDir = freshDir();
    const res = await runCli(
      ['serve', '--host', '0.0.0.0', '--port', '0', '--data-dir', dataDir],
      { OPENBATCH_UPSTREAM_URL: 'http://127.0.0.1:9/v1' },
      20_000,
    );
    expect(res.timedOut, 'serve was still running after 20 s').toBe(false);
    expect(res.code).not.toBe(0);
    expect(res.code).not.toBeNull();
    expect(res.stderr).toMatch(/API keys/);
    expect(res.stdout).not.toContain('listening');
  });
});
