import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
};

/**
 * The published package, as another project sees it: `npm pack` (which runs `prepare`, the
 * build), then the tarball unpacked where `npm install <tarball>` puts it. Its dependencies are
 * linked from this clone's node_modules rather than installed: an offline machine has no registry
 * to fetch them from (and better-sqlite3 would compile for minutes), and Node resolves them from
 * node_modules/openbatch upwards exactly as after a real install.
 */
let project: string;
let tarballFiles: string[];

beforeAll(() => {
  project = mkdtempSync(join(tmpdir(), 'openbatch-consumer-'));
  const packed = JSON.parse(
    execFileSync('npm', ['pack', '--json', '--pack-destination', project], {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }),
  ) as { filename: string; files: { path: string }[] }[];
  tarballFiles = packed[0]!.files.map((f) => f.path);
  const target = join(project, 'node_modules', 'openbatch');
  mkdirSync(target, { recursive: true });
  execFileSync('tar', [
    '-xzf',
    join(project, packed[0]!.filename),
    '-C',
    target,
    '--strip-components=1',
  ]);
  for (const dep of readdirSync(join(ROOT, 'node_modules'))) {
    if (dep === 'openbatch' || dep.startsWith('.')) continue;
    symlinkSync(join(ROOT, 'node_modules', dep), join(project, 'node_modules', dep));
  }
  mkdirSync(join(project, 'node_modules', '.bin'));
  symlinkSync('../openbatch/bin/openbatch.js', join(project, 'node_modules', '.bin', 'openbatch'));
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({ name: 'consumer', type: 'module' }),
  );
}, 240_000);

afterAll(() => rmSync(project, { recursive: true, force: true }));

const npx = (args: string[]): string =>
  execFileSync('npx', ['--no-install', 'openbatch', ...args], { cwd: project, encoding: 'utf8' });

describe('the packed package in another project', () => {
  it('ships compiled JavaScript with types, and no TypeScript sources or tests', () => {
    expect(tarballFiles).toContain('dist/sdk/index.js');
    expect(tarballFiles).toContain('dist/sdk/index.d.ts');
    expect(tarballFiles).toContain('dist/cli/main.js');
    expect(tarballFiles).toContain('dashboard/index.html');
    expect(tarballFiles).toContain('dashboard/app.js');
    expect(tarballFiles.filter((f) => f.startsWith('src/') || f.startsWith('test/'))).toEqual([]);
  });

  it('`npx openbatch --help` and `--version` work', () => {
    expect(npx(['--version']).trim()).toBe(version);
    const help = npx(['--help']);
    expect(help).toContain('Usage: openbatch');
    for (const command of ['serve', 'run', 'submit', 'keys']) expect(help).toContain(command);
  });

  it('type-checks `import { runBatch } from "openbatch"` under NodeNext resolution', () => {
    writeFileSync(
      join(project, 'typed.ts'),
      `import { runBatch, type RunBatchOptions } from 'openbatch';\n` +
        `const options: RunBatchOptions = { baseURL: 'http://127.0.0.1:1/v1', batchSize: 2 };\n` +
        `const run: (r: { model: string }[], o: RunBatchOptions) => Promise<{ jobId: string }> = runBatch;\n` +
        `export { options, run };\n`,
    );
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const args = [
      '--noEmit',
      '--strict',
      '--skipLibCheck',
      '--module',
      'nodenext',
      '--moduleResolution',
      'nodenext',
    ];
    const check = (): string => {
      const r = spawnSync(process.execPath, [tsc, ...args, '--types', 'node', 'typed.ts'], {
        cwd: project,
        encoding: 'utf8',
      });
      return `${r.status} ${r.stdout}`;
    };
    expect(check()).toBe('0 ');
    // The check can fail: a wrong type is reported through the package's declarations.
    writeFileSync(
      join(project, 'typed.ts'),
      `import { runBatch } from 'openbatch';\nconst n: number = runBatch;\nexport { n };\n`,
    );
    expect(check()).toMatch(/^2 .*RunBatchOptions.*not assignable to type 'number'/s);
  });

  it('runs a batch with runBatch against `openbatch serve` started from the installed bin', async () => {
    const dataDir = join(project, 'data');
    const env: NodeJS.ProcessEnv = { ...process.env, OPENBATCH_LOG_LEVEL: 'warn' };
    for (const key of [
      'OPENBATCH_UPSTREAM_URL',
      'OPENAI_API_KEY',
      'OPENBATCH_CONFIG',
      'OPENBATCH_API_KEYS',
    ])
      delete env[key];
    const server = spawn(
      join(project, 'node_modules', '.bin', 'openbatch'),
      ['serve', '--port', '0', '--data-dir', dataDir],
      { cwd: project, env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    server.stdout.on('data', (d: Buffer) => (out += d.toString()));
    server.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<unknown>((resolve) => server.once('exit', resolve));
    try {
      const baseURL = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`not ready:\n${out}`)), 45_000);
        server.stdout.on('data', () => {
          const match = /openbatch listening on (http:\/\/\S+\/v1)/.exec(out);
          if (match?.[1]) {
            clearTimeout(timer);
            resolve(match[1]);
          }
        });
      });
      // The installed server serves the dashboard from the package's own files.
      const page = await fetch(baseURL.replace(/\/v1$/, '/dashboard'));
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<title>openbatch</title>');
      const script = await fetch(baseURL.replace(/\/v1$/, '/dashboard/static/app.js'));
      expect(script.status).toBe(200);
      writeFileSync(
        join(project, 'use.mjs'),
        `import { runBatch } from 'openbatch';\n` +
          `const requests = ['one', 'two', 'three'].map((w) => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: w }], max_tokens: 5 }));\n` +
          `const r = await runBatch(requests, { baseURL: ${JSON.stringify(baseURL)}, apiKey: 'local', batchSize: 2, pollIntervalMs: 200 });\n` +
          `console.log(JSON.stringify({ counts: r.counts, ids: r.results.map((x) => x.custom_id), batches: r.batches.length }));\n`,
      );
      const printed = execFileSync(process.execPath, ['use.mjs'], {
        cwd: project,
        encoding: 'utf8',
        timeout: 60_000,
      });
      const result = JSON.parse(printed.trim().split('\n').at(-1)!);
      expect(result.counts).toMatchObject({ total: 3, completed: 3, failed: 0 });
      expect(result.ids).toHaveLength(3);
      expect(result.batches).toBe(2);
    } finally {
      server.kill('SIGTERM');
      await exited;
    }
  });
});
