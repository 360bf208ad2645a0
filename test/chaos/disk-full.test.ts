import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSimulator, type Simulator } from '../../src/simulator/simulator.ts';
import type { ServerProcess } from '../helpers/server-process.ts';
import { recordedLines, undoneLines } from '../helpers/store-peek.ts';
import { check, formatReport } from './harness/checker.ts';
import {
  FAST_ENGINE_ENV,
  Servers,
  clientFor,
  fileText,
  integrityCheck,
  jsonlOf,
  removeDir,
  resultsOf,
  sleep,
  submitBatch,
  taggedLine,
  tempDir,
  waitTerminal,
  waitUntil,
  withDb,
} from './harness/chaos-env.ts';

/**
 * Disk full (A8 #8): the data directory on a 20 MiB tmpfs. Uploads that do not fit fail with an
 * error envelope, not a crash; the engine pauses (process alive, `PRAGMA integrity_check` ok)
 * while results or output files cannot be written, and resumes when space returns; no output file
 * is ever truncated. Needs root for `mount -t tmpfs`; skipped with a printed reason otherwise.
 */

const MOUNT_SIZE = '20m';

/** Fills the file system until ENOSPC; returns the filler's path (delete it to free the space). */
function fillDisk(dir: string): string {
  const path = join(dir, 'filler.bin');
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(256 * 1024, 0x61);
  try {
    for (let i = 0; i < 1_000; i++) writeSync(fd, chunk);
  } catch {
    // ENOSPC: full. Top up byte-wise with smaller writes so not even a page is left.
    for (const size of [65_536, 4_096, 512, 1]) {
      try {
        for (let i = 0; i < 1_000; i++) writeSync(fd, chunk.subarray(0, size));
      } catch {
        // next size
      }
    }
  } finally {
    closeSync(fd);
  }
  return path;
}

describe('disk full (data dir on a 20 MiB tmpfs)', () => {
  const mountDir = tempDir('diskfull');
  let mounted = false;
  let skipReason = '';
  let sim: Simulator;
  let simUrl = '';
  const servers = new Servers();
  let proc: ServerProcess | null = null;
  const dataDir = join(mountDir, 'data');

  beforeAll(async () => {
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${MOUNT_SIZE}`, 'tmpfs', mountDir], {
        stdio: 'pipe',
      });
      mounted = true;
    } catch (err) {
      skipReason = `cannot mount a tmpfs (${(err as Error).message.split('\n')[0]}); disk-full scenario skipped`;
      console.log(skipReason);
    }
    sim = createSimulator({ latencyMs: 30, latencyJitterMs: 20 });
    simUrl = (await sim.listen(0)).url;
  });
  afterAll(async () => {
    await servers.killAll();
    await sim.close();
    if (mounted) {
      try {
        execFileSync('umount', [mountDir], { stdio: 'pipe' });
      } catch (err) {
        console.log(`umount ${mountDir} failed: ${(err as Error).message}`);
      }
    }
    removeDir(mountDir);
  });

  const alive = () =>
    proc !== null && proc.child.exitCode === null && proc.child.signalCode === null;

  const env = () => ({
    ...FAST_ENGINE_ENV,
    OPENBATCH_UPSTREAM_URL: `${simUrl}/v1`,
    OPENBATCH_TICK_MS: '2000',
    OPENBATCH_LOG_LEVEL: 'info',
  });
  /** Each step starts from a running server, so one crash does not hide the next finding. */
  async function ensureServer(): Promise<ServerProcess> {
    if (proc === null || !alive()) proc = await servers.spawn(dataDir, env());
    return proc;
  }

  it('answers an upload that does not fit with an error envelope and stays up', async (ctx) => {
    if (!mounted) return ctx.skip();
    const server = await ensureServer();
    const big = Buffer.alloc(25 * 1024 * 1024, 'x');
    big.write('{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{}}\n');
    const form = new FormData();
    form.append('file', new Blob([big]), 'big.jsonl');
    form.append('purpose', 'batch');
    let answer: string;
    let status = 0;
    let text = '';
    try {
      const res = await fetch(`${server.baseURL}/files`, { method: 'POST', body: form });
      status = res.status;
      text = await res.text();
      answer = `HTTP ${status} ${text.slice(0, 300)}`;
    } catch (err) {
      answer = `no answer: ${(err as Error).message} (${String((err as Error).cause)})`;
    }
    await sleep(500);
    const why =
      `upload of 25 MiB into ${MOUNT_SIZE}: ${answer}; alive=${String(alive())}\n` +
      `server output (tail):\n${server.output().slice(-1500)}`;
    console.log(`[disk-full] ${why}`);
    expect(alive(), why).toBe(true);
    expect(status, why).toBeGreaterThanOrEqual(400);
    const body = JSON.parse(text) as { error?: { message?: string; type?: string } };
    expect(typeof body.error?.message, why).toBe('string');
    // Disk full is the server's condition, not a malformed request: a 5xx (507/500) class answer.
    expect(status, why).toBeGreaterThanOrEqual(500);
    expect((await fetch(`${server.baseURL.replace(/\/v1$/, '')}/health`)).status).toBe(200);
    expect(readdirSync(join(dataDir, 'tmp')), 'temp upload left behind').toEqual([]);
  }, 60_000);

  it('pauses while results cannot be recorded and resumes when space returns', async (ctx) => {
    if (!mounted) return ctx.skip();
    const server = await ensureServer();
    const client = clientFor(server.baseURL);
    const ids = Array.from({ length: 1_500 }, (_, i) => `a-${i}`);
    const { batchId } = await submitBatch(client, jsonlOf(ids.map((id) => taggedLine(id))));
    // Succeeded lines committed so far: the output spool up to its committed length.
    const recorded = () => recordedLines(dataDir, batchId).output.length;
    await waitUntil(() => recorded() >= 100, 60_000, 'the batch to be under way', 5);
    const filler = fillDisk(mountDir);
    const atFull = recorded();
    await sleep(3_000);
    const duringFull = recorded();
    const integrity = integrityCheck(dataDir);
    const stillAnswers = (await client.batches.retrieve(batchId)).status;
    const why =
      `recorded at fill=${atFull}, 3 s later=${duringFull}; integrity=${integrity}; ` +
      `status while full=${stillAnswers}; alive=${String(alive())}`;
    console.log(`[disk-full] ${why}`);
    expect(alive(), `${why}\n${server.output().slice(-2000)}`).toBe(true);
    expect(integrity, why).toBe('ok');
    rmSync(filler);
    const batch = await waitTerminal(client, batchId, 90_000);
    const { output, errors, counts } = await resultsOf(client, batch);
    const report = check({
      inputIds: ids,
      calls: sim.calls(),
      outputLines: output,
      errorLines: errors,
      counts,
    });
    console.log(formatReport(report, '[disk-full results]'));
    expect(batch.status, why).toBe('completed');
    expect(report.ok, formatReport(report)).toBe(true);
    expect(integrityCheck(dataDir)).toBe('ok');
  }, 150_000);

  it('never ends a batch while its output cannot be written, then writes it whole', async (ctx) => {
    if (!mounted) return ctx.skip();
    sim.reset();
    const server = await ensureServer();
    const client = clientFor(server.baseURL);
    const ids = Array.from({ length: 1_500 }, (_, i) => `b-${i}`);
    const { batchId } = await submitBatch(client, jsonlOf(ids.map((id) => taggedLine(id))));
    const status = () =>
      withDb(dataDir, (db) => {
        const b = db.prepare(`SELECT status FROM batches WHERE id = ?`).get(batchId) as {
          status: string;
        };
        return b.status;
      });
    // Lines with no recorded outcome yet: unfinished lines of pending, queued or leased chunks.
    const state = () => ({
      status: status(),
      open: undoneLines(dataDir, batchId, ['pending', 'queued', 'leased']),
    });
    // Fill the disk the moment the last result is recorded: the supervisor (2 s tick) has not
    // started finalizing yet, so the output file is written onto a full disk.
    await waitUntil(
      () => {
        const s = state();
        return s.status !== 'validating' && s.open === 0;
      },
      90_000,
      'every line recorded',
      2,
    );
    const filler = fillDisk(mountDir);
    const before = state().status;
    await sleep(5_000);
    const during = state().status;
    const integrity = integrityCheck(dataDir);
    const why = `status at fill=${before}, 5 s on a full disk=${during}; integrity=${integrity}; alive=${String(alive())}`;
    console.log(`[disk-full] ${why}`);
    expect(alive(), `${why}\n${server.output().slice(-2000)}`).toBe(true);
    expect(during, why).not.toBe('completed');
    expect(integrity, why).toBe('ok');
    rmSync(filler);
    const batch = await waitTerminal(client, batchId, 60_000);
    const raw = await fileText(client, batch.output_file_id);
    const { output, errors, counts } = await resultsOf(client, batch);
    const report = check({
      inputIds: ids,
      calls: sim.calls(),
      outputLines: output,
      errorLines: errors,
      counts,
    });
    console.log(formatReport(report, '[disk-full finalize]'));
    expect(batch.status, why).toBe('completed');
    expect(report.ok, formatReport(report)).toBe(true);
    expect(raw.endsWith('\n'), 'output file ends mid-line').toBe(true);
    expect(Buffer.byteLength(raw)).toBe(
      (await client.files.retrieve(batch.output_file_id as string)).bytes,
    );
  }, 150_000);
});
