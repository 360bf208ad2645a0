import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { runList } from '../../src/cli/commands/list.ts';
import { runResults } from '../../src/cli/commands/results.ts';
import { runRun } from '../../src/cli/commands/run.ts';
import { runStatus } from '../../src/cli/commands/status.ts';
import { runSubmit } from '../../src/cli/commands/submit.ts';
import { fsJobStore } from '../../src/sdk/job-store.ts';
import { chatLine, startTestServer, writeJsonl, type TestServer } from '../helpers/test-server.ts';
import { captureIo } from '../sdk/helpers/capture-io.ts';

const KEY = 'team-key-0123456789abcdef';
let open: TestServer;
let keyed: TestServer;
const dir = mkdtempSync(join(tmpdir(), 'openbatch-friction-'));
const input = () => writeJsonl([chatLine('a', 'one'), chatLine('b', 'two')]);

beforeAll(async () => {
  open = await startTestServer();
  keyed = await startTestServer({ env: { OPENBATCH_API_KEYS: `${KEY}:team` } });
});
afterAll(async () => {
  await open.close();
  await keyed.close();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(() => vi.unstubAllEnvs());

/** No key in the environment, whatever the machine running the tests has set. */
function clearKeys(): void {
  vi.stubEnv('OPENBATCH_API_KEY', '');
  vi.stubEnv('OPENAI_API_KEY', '');
  vi.stubEnv('OPENAI_BASE_URL', '');
}

describe('API keys for the client commands', () => {
  it('a local openbatch in open mode needs no --api-key', async () => {
    clearKeys();
    const jobsDir = join(dir, 'open');
    const cap = captureIo();
    const code = await runSubmit(
      { baseUrl: open.baseURL, jobsDir, input: input(), json: true },
      cap.io,
    );
    expect(cap.stderr()).toBe('');
    expect(code).toBe(0);
    const { job_id } = JSON.parse(cap.stdout()) as { job_id: string };
    expect((await fsJobStore(jobsDir).load(job_id))?.api_key_source).toBe('open-mode');
  });

  it('takes OPENBATCH_API_KEY, remembers that the job used it, and reads it again', async () => {
    clearKeys();
    vi.stubEnv('OPENBATCH_API_KEY', KEY);
    vi.stubEnv('OPENAI_API_KEY', 'sk-for-openai-not-for-this-server');
    const jobsDir = join(dir, 'keyed');
    const cap = captureIo();
    expect(
      await runSubmit({ baseUrl: keyed.baseURL, jobsDir, input: input(), json: true }, cap.io),
    ).toBe(0);
    const { job_id } = JSON.parse(cap.stdout()) as { job_id: string };
    const manifest = readdirSync(jobsDir).find((f) => f === `${job_id}.json`);
    expect(manifest).toBeDefined();
    expect((await fsJobStore(jobsDir).load(job_id))?.api_key_source).toBe('OPENBATCH_API_KEY');
    const status = captureIo();
    expect(await runStatus({ job: job_id, jobsDir, json: true }, status.io)).toBe(0);
  });

  it('without any key for a remote server, says which flag or variable to set', async () => {
    clearKeys();
    const cap = captureIo();
    const code = await runSubmit(
      { baseUrl: 'https://batch.example.com/v1', jobsDir: join(dir, 'none'), input: input() },
      cap.io,
    );
    expect(code).toBe(2);
    expect(cap.stderr()).toMatch(/--api-key.*OPENBATCH_API_KEY.*OPENAI_API_KEY/);
    expect(cap.stderr()).not.toMatch(/OpenAI SDK|apiKey option/);
  });
});

describe('a submit that fails before anything is created', () => {
  it('leaves no job behind, so `last` is not a stuck job', async () => {
    clearKeys();
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    const jobsDir = join(dir, 'stuck');
    const cap = captureIo();
    const code = await runSubmit(
      { baseUrl: `http://127.0.0.1:${port}/v1`, jobsDir, input: input() },
      cap.io,
    );
    expect(code).toBe(1);
    expect(cap.stderr()).toMatch(/cannot reach the Batch API/);
    expect(existsSync(jobsDir) ? readdirSync(jobsDir) : []).toEqual([]);
    const list = captureIo();
    await runList({ jobsDir, json: true }, list.io);
    expect(JSON.parse(list.stdout())).toEqual([]);
    const last = captureIo();
    expect(await runStatus({ job: 'last', jobsDir }, last.io)).toBe(2);
  });
});

describe('--base-url without /v1', () => {
  it('suggests the /v1 URL instead of only "404 Invalid URL"', async () => {
    clearKeys();
    const cap = captureIo();
    const code = await runSubmit(
      { baseUrl: open.baseURL.replace(/\/v1$/, ''), jobsDir: join(dir, 'nov1'), input: input() },
      cap.io,
    );
    expect(code).toBe(1);
    expect(cap.stderr()).toContain(`did you mean --base-url ${open.baseURL} ?`);
  });
});

/** No upstream in the environment either. */
function clearUpstreams(): void {
  for (const name of ['OPENBATCH_UPSTREAM_URL', 'OPENBATCH_CONFIG', 'OPENBATCH_UPSTREAM_API_KEY'])
    vi.stubEnv(name, '');
}

describe('openbatch run without an upstream', () => {
  it('offers --simulate, and --simulate runs the file against the built-in simulator', async () => {
    clearKeys();
    clearUpstreams();
    const file = input();
    const stateDir = join(dir, 'sim-state');
    const stop = captureIo();
    expect(await runRun({ input: file, stateDir }, stop.io)).toBe(2);
    expect(stop.stderr()).toContain('--simulate');
    const sim = captureIo();
    expect(
      await runRun({ input: file, stateDir, simulate: true, pollIntervalMs: 100 }, sim.io),
    ).toBe(0);
    expect(sim.stderr()).toContain('SIMULATOR');
    expect(sim.stdout()).toContain('2 of 2 lines completed');
  });
});

describe('result files of run and results', () => {
  it('no empty error file by default, and `results` never overwrites what `run` wrote', async () => {
    clearKeys();
    clearUpstreams();
    const file = input();
    const stem = file.replace(/\.jsonl$/, '');
    const run = captureIo();
    expect(
      await runRun(
        { input: file, stateDir: join(dir, 'run-state'), simulate: true, pollIntervalMs: 100 },
        run.io,
      ),
    ).toBe(0);
    expect(existsSync(`${stem}.output.jsonl`)).toBe(true);
    expect(existsSync(`${stem}.errors.jsonl`)).toBe(false);
    expect(run.stdout()).toContain('errors: none');
    const runOutput = readFileSync(`${stem}.output.jsonl`, 'utf8');

    const jobsDir = join(dir, 'results-jobs');
    const submit = captureIo();
    expect(
      await runSubmit(
        {
          baseUrl: open.baseURL,
          jobsDir,
          input: file,
          wait: true,
          pollIntervalMs: 100,
          json: true,
        },
        submit.io,
      ),
    ).toBe(0);
    const job = (await fsJobStore(jobsDir).list()).at(-1)!;
    const results = captureIo();
    expect(await runResults({ job: job.id, jobsDir }, results.io)).toBe(0);
    expect(existsSync(`${stem}.${job.id}.output.jsonl`)).toBe(true);
    expect(existsSync(`${stem}.${job.id}.errors.jsonl`)).toBe(false);
    expect(readFileSync(`${stem}.output.jsonl`, 'utf8')).toBe(runOutput);

    // Named with --errors, the error file is written even when empty.
    const named = join(dir, 'named-errors.jsonl');
    expect(await runResults({ job: job.id, jobsDir, errors: named }, captureIo().io)).toBe(0);
    expect(readFileSync(named, 'utf8')).toBe('');
  });
});
