import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerCancel, runCancel } from '../../src/cli/commands/cancel.ts';
import { registerEstimate, runEstimate } from '../../src/cli/commands/estimate.ts';
import { registerList, runList } from '../../src/cli/commands/list.ts';
import { registerResults, runResults } from '../../src/cli/commands/results.ts';
import { registerRetry, runRetry } from '../../src/cli/commands/retry.ts';
import { registerRun, runRun } from '../../src/cli/commands/run.ts';
import { registerStatus, runStatus } from '../../src/cli/commands/status.ts';
import { registerSubmit, runSubmit } from '../../src/cli/commands/submit.ts';
import { registerWait, runWait } from '../../src/cli/commands/wait.ts';
import { chatLine, startTestServer, writeJsonl, type TestServer } from '../helpers/test-server.ts';
import { captureIo, type CapturedIo } from '../sdk/helpers/capture-io.ts';

const COMMANDS = {
  run: registerRun,
  submit: registerSubmit,
  status: registerStatus,
  wait: registerWait,
  results: registerResults,
  cancel: registerCancel,
  retry: registerRetry,
  list: registerList,
  estimate: registerEstimate,
};

/** The full --help text of one command, as commander prints it (examples included). */
function helpOf(name: keyof typeof COMMANDS): string {
  let text = '';
  const program = new Command()
    .name('openbatch')
    .configureOutput({ writeOut: (s) => void (text += s) });
  COMMANDS[name](program, captureIo().io, () => undefined);
  program.commands.find((c) => c.name() === name)!.outputHelp();
  return text;
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Exactly one line on stderr naming the command, and the expected exit code. */
function expectOneLineFailure(
  cap: CapturedIo,
  code: number,
  expected: number,
  pattern: RegExp,
): void {
  const lines = cap.stderr().split('\n').filter(Boolean);
  expect(lines, cap.stderr()).toHaveLength(1);
  expect(lines[0]).toMatch(/^openbatch \w+: /);
  expect(lines[0]).toMatch(pattern);
  expect(code).toBe(expected);
}

describe('client commands: help, --json and one-line failures', () => {
  let t: TestServer;
  let keyed: TestServer;
  const dir = mkdtempSync(join(tmpdir(), 'openbatch-cli-'));
  const jobsDir = join(dir, 'jobs');
  const good = () => writeJsonl([chatLine('a', 'one'), chatLine('b', 'two')]);
  const bad = () => writeJsonl([chatLine('a', 'one'), '{"custom_id": ']);
  const missing = join(dir, 'nope.jsonl');
  beforeAll(async () => {
    t = await startTestServer();
    keyed = await startTestServer({ env: { OPENBATCH_API_KEYS: 'right-key-0123456789:team' } });
  });
  afterAll(async () => {
    await t.close();
    await keyed.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('every command has --help with an example', () => {
    for (const name of Object.keys(COMMANDS) as (keyof typeof COMMANDS)[]) {
      const help = helpOf(name);
      expect(help, name).toContain(`Usage: openbatch ${name}`);
      expect(help, name).toContain('--json');
      expect(help, name).toMatch(new RegExp(`Examples:\\n {2}\\$ openbatch ${name}[ \\n]`));
    }
  });

  it('every command prints JSON for scripts with --json', async () => {
    const flags = {
      baseUrl: t.baseURL,
      apiKey: 'test-key',
      jobsDir,
      json: true,
      pollIntervalMs: 100,
    };
    const json = async (run: (io: CapturedIo['io']) => Promise<number>): Promise<any> => {
      const cap = captureIo();
      expect(await run(cap.io), cap.stderr()).toBe(0);
      return JSON.parse(cap.stdout());
    };
    const input = good();
    expect((await json((io) => runEstimate({ input, json: true }, io))).valid).toBe(2);
    const submitted = await json((io) => runSubmit({ ...flags, input }, io));
    expect(submitted.batches).toHaveLength(1);
    const job = submitted.job_id as string;
    expect((await json((io) => runWait({ ...flags, job }, io))).state).toBe('finished');
    expect((await json((io) => runStatus({ ...flags, job }, io))).counts.completed).toBe(2);
    const results = await json((io) =>
      runResults({ ...flags, job, output: join(dir, 'o.jsonl'), errors: join(dir, 'e.jsonl') }, io),
    );
    expect(results.outputLines).toBe(2);
    expect((await json((io) => runRetry({ ...flags, job }, io))).retried).toBe(0);
    expect((await json((io) => runCancel({ ...flags, job }, io))).cancelled).toEqual([]);
    expect(
      (await json((io) => runList({ jobsDir, json: true }, io))).map((j: any) => j.job_id),
    ).toContain(job);
    const upstream = t.config.upstreams[0]!.baseUrl;
    const run = await json((io) =>
      runRun({ input, upstream, stateDir: join(dir, 'run'), json: true, pollIntervalMs: 100 }, io),
    );
    expect(run.counts).toMatchObject({ total: 2, completed: 2 });
  });

  it('a missing file or bad JSONL is one line and exit 2', async () => {
    const flags = { baseUrl: t.baseURL, apiKey: 'test-key', jobsDir };
    const upstream = t.config.upstreams[0]!.baseUrl;
    for (const [input, pattern] of [
      [missing, /file not found: .*nope\.jsonl/],
      [bad(), /1 invalid line \(line 2: This line is not parseable as valid JSON\.\)/],
    ] as const) {
      for (const run of [
        (io: CapturedIo['io']) => runSubmit({ ...flags, input }, io),
        (io: CapturedIo['io']) => runRun({ input, upstream, stateDir: join(dir, 'bad-run') }, io),
      ]) {
        const cap = captureIo();
        expectOneLineFailure(cap, await run(cap.io), 2, pattern);
      }
    }
    const cap = captureIo();
    expectOneLineFailure(cap, await runEstimate({ input: missing }, cap.io), 2, /file not found/);
    const unknown = captureIo();
    expectOneLineFailure(
      unknown,
      await runStatus({ ...flags, job: 'job_unknown' }, unknown.io),
      2,
      /no job 'job_unknown'/,
    );
    const limit = captureIo();
    expectOneLineFailure(
      limit,
      await runList({ jobsDir, limit: 'many' }, limit.io),
      2,
      /--limit: expected a positive integer/,
    );
  });

  it('an unreachable server is one line and exit 1, for every command that calls it', async () => {
    const submitted = captureIo();
    await runSubmit(
      { baseUrl: t.baseURL, apiKey: 'test-key', jobsDir, input: good(), json: true },
      submitted.io,
    );
    const job = JSON.parse(submitted.stdout()).job_id as string;
    const flags = {
      baseUrl: `http://127.0.0.1:${await closedPort()}/v1`,
      apiKey: 'test-key',
      jobsDir,
      job,
    };
    const runs = [
      (io: CapturedIo['io']) => runSubmit({ ...flags, input: good() }, io),
      (io: CapturedIo['io']) => runStatus(flags, io),
      (io: CapturedIo['io']) => runWait(flags, io),
      (io: CapturedIo['io']) => runResults(flags, io),
      (io: CapturedIo['io']) => runCancel(flags, io),
      (io: CapturedIo['io']) => runRetry(flags, io),
    ];
    const caps = runs.map(() => captureIo());
    const codes = await Promise.all(runs.map((run, i) => run(caps[i]!.io)));
    codes.forEach((code, i) =>
      expectOneLineFailure(caps[i]!, code, 1, /cannot reach the Batch API: .*ECONNREFUSED/),
    );
    const run = captureIo();
    const upstream = `http://127.0.0.1:${await closedPort()}/v1`;
    const code = await runRun({ input: good(), upstream, stateDir: join(dir, 'down') }, run.io);
    expectOneLineFailure(run, code, 1, /cannot reach upstream .*ECONNREFUSED/);
  });

  it('a bad API key is one line and exit 1', async () => {
    const flags = { baseUrl: keyed.baseURL, apiKey: 'wrong-key', jobsDir };
    const cap = captureIo();
    expectOneLineFailure(
      cap,
      await runSubmit({ ...flags, input: good() }, cap.io),
      1,
      /rejected the API key \(401\)/,
    );
    const ok = captureIo();
    expect(
      await runSubmit(
        { ...flags, apiKey: 'right-key-0123456789', input: good(), json: true },
        ok.io,
      ),
    ).toBe(0);
    const job = JSON.parse(ok.stdout()).job_id as string;
    const status = captureIo();
    expectOneLineFailure(
      status,
      await runStatus({ ...flags, job }, status.io),
      1,
      /rejected the API key/,
    );
    const prices = join(dir, 'prices.json');
    writeFileSync(prices, '{"gpt-4o-mini": {"inputPerMTok": "cheap"}}');
    const est = captureIo();
    expectOneLineFailure(
      est,
      await runEstimate({ input: good(), pricing: prices }, est.io),
      1,
      /pricing file .*inputPerMTok/,
    );
  });
});
