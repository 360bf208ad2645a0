/**
 * kill -9 during upload and during finalizing (A8 #2): files appear whole or not at all, and a
 * batch is never `completed` without its files. Shared by the fast and the full variant.
 */
import { createHash } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { createSimulator } from '../../../src/simulator/simulator.ts';
import type { ServerProcess } from '../../helpers/server-process.ts';
import { check, formatReport, type CheckReport } from './checker.ts';
import {
  FAST_ENGINE_ENV,
  Servers,
  clientFor,
  dbPath,
  fileText,
  jsonlOf,
  killHard,
  removeDir,
  resultsOf,
  sleep,
  submitBatch,
  taggedLine,
  tempDir,
  waitTerminal,
  waitUntil,
} from './chaos-env.ts';
import { createRandom } from './prng.ts';

const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

/** Blob files on disk that no file row points at (invisible through the API, but disk used). */
export function orphanBlobs(dataDir: string): string[] {
  const rows = new Database(dbPath(dataDir), { readonly: true });
  try {
    const known = new Set(
      (rows.prepare(`SELECT id FROM files`).all() as { id: string }[]).map((r) => r.id),
    );
    return readdirSync(join(dataDir, 'blobs')).filter((name) => !known.has(name));
  } finally {
    rows.close();
  }
}

/**
 * Streams a multipart upload by hand and calls `onProgress(bytesSent)` after each chunk; the
 * caller may kill the server at any point. Resolves with the HTTP status, or the socket error.
 */
export function streamUpload(
  baseURL: string,
  content: Buffer,
  chunkBytes: number,
  onProgress: (sent: number) => Promise<void>,
): Promise<{ status: number; body: string } | { error: string }> {
  const boundary = `----chaos${Date.now()}`;
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.jsonl"\r\n` +
      `Content-Type: application/jsonl\r\n\r\n`,
  );
  const tail = Buffer.from(
    `\r\n--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n--${boundary}--\r\n`,
  );
  const url = new URL(`${baseURL}/files`);
  return new Promise((resolve) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        headers: {
          'content-type': `multipart/form-data; boundary=${boundary}`,
          'content-length': head.length + content.length + tail.length,
          authorization: 'Bearer chaos-key',
        },
      },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', (e) => resolve({ error: e.message }));
      },
    );
    req.on('error', (e) => resolve({ error: e.message }));
    void (async () => {
      req.write(head);
      for (let at = 0; at < content.length; at += chunkBytes) {
        if (req.destroyed) return;
        const chunk = content.subarray(at, at + chunkBytes);
        if (!req.write(chunk))
          await new Promise<void>((r) => {
            req.once('drain', r);
            req.once('close', r);
          });
        await onProgress(at + chunk.length);
      }
      req.end(tail);
    })();
  });
}

export interface UploadKillResult {
  why: string;
  /** Files visible through the API that are not exactly one of the uploads made (must be none). */
  partialVisible: string[];
  completeUploads: number;
  absentAfterKill: number;
  orphanBlobs: number;
}

/**
 * Uploads a big JSONL file `kills` times and kills the server at a random byte offset each time
 * (0–100 %: also just after the last byte, racing the commit), restarting in between; then lists
 * the files and checks each one's size and content against what was sent.
 */
export async function runUploadKills(opts: {
  name: string;
  kills: number;
  fileBytes: number;
}): Promise<UploadKillResult> {
  const rng = createRandom(opts.name);
  const dataDir = tempDir(opts.name);
  const servers = new Servers();
  const env = { ...FAST_ENGINE_ENV, OPENBATCH_API_KEYS: 'chaos-key:p' };
  try {
    const lineText = (i: number) => JSON.stringify(taggedLine(`u-${i}`)) + '\n';
    const lines: string[] = [];
    let size = 0;
    for (let i = 0; size < opts.fileBytes; i++) {
      const l = lineText(i);
      lines.push(l);
      size += Buffer.byteLength(l);
    }
    const content = Buffer.from(lines.join(''));
    const digest = sha256(content);
    let proc: ServerProcess = await servers.spawn(dataDir, env);
    const outcomes: string[] = [];
    let completeUploads = 0;
    for (let k = 0; k < opts.kills; k++) {
      const killAt = Math.floor(rng.range(0.05, 1.0001) * content.length);
      const current = proc;
      let killed = false;
      const result = await streamUpload(proc.baseURL, content, 64 * 1024, async (sent) => {
        if (!killed && sent >= killAt) {
          killed = true;
          await killHard(current);
        }
      });
      if (!killed) await killHard(current); // the last byte was sent before the offset came
      if ('status' in result && result.status === 200) completeUploads++;
      outcomes.push(
        `${Math.round((100 * killAt) / content.length)}%→${'status' in result ? result.status : 'reset'}`,
      );
      proc = await servers.spawn(dataDir, env);
    }
    // One upload that is allowed to finish, as the reference.
    const ok = await streamUpload(proc.baseURL, content, 256 * 1024, async () => undefined);
    const client = clientFor(proc.baseURL);
    const listed = [];
    for await (const f of client.files.list({ purpose: 'batch' })) listed.push(f);
    const partialVisible: string[] = [];
    for (const f of listed) {
      const text = Buffer.from(await (await client.files.content(f.id)).arrayBuffer());
      if (f.bytes !== content.length || text.length !== f.bytes || sha256(text) !== digest)
        partialVisible.push(`${f.id} bytes=${f.bytes} content=${text.length}`);
    }
    const orphans = orphanBlobs(dataDir).length;
    const tmpLeft = readdirSync(join(dataDir, 'tmp')).length;
    const why =
      `${rng.tag} uploads killed at [${outcomes.join(', ')}], reference upload ` +
      `${'status' in ok ? ok.status : ok.error}; listed=${listed.length} (complete ${completeUploads} + reference 1) ` +
      `partialVisible=${partialVisible.length} orphanBlobs=${orphans} tmpLeftAfterRestart=${tmpLeft}`;
    console.log(why);
    return {
      why,
      partialVisible,
      completeUploads,
      absentAfterKill: opts.kills - completeUploads,
      orphanBlobs: orphans,
    };
  } finally {
    await servers.killAll();
    removeDir(dataDir);
  }
}

export interface FinalizeKillResult {
  why: string;
  status: string;
  report: CheckReport;
  /** Observations of `completed` whose output file was missing or short (must be none). */
  completedWithoutFiles: string[];
  killsWhileFinalizing: number;
  outputLines: number;
}

/** The batch as the database holds it right after a kill, plus whether its files are whole. */
function inspect(
  dataDir: string,
  batchId: string,
): { status: string; total: number; outputOk: boolean | null; tmp: number; orphans: number } {
  const db = new Database(dbPath(dataDir), { readonly: true });
  try {
    const b = db
      .prepare(`SELECT status, total, completed, output_file_id FROM batches WHERE id = ?`)
      .get(batchId) as { status: string; total: number; completed: number; output_file_id: string };
    let outputOk: boolean | null = null;
    if (b.status === 'completed') {
      const f = db.prepare(`SELECT bytes FROM files WHERE id = ?`).get(b.output_file_id) as
        { bytes: number } | undefined;
      let size = -1;
      try {
        size = statSync(join(dataDir, 'blobs', b.output_file_id)).size;
      } catch {
        size = -1;
      }
      outputOk = f !== undefined && f.bytes === size;
    }
    return {
      status: b.status,
      total: b.total,
      outputOk,
      tmp: readdirSync(join(dataDir, 'tmp')).length,
      orphans: 0,
    };
  } finally {
    db.close();
  }
}

/**
 * Runs a large batch (upstream latency 0) and kills the server while it is finalizing, `kills`
 * times (each restart starts finalizing over), at random delays after `finalizing` is seen.
 */
export async function runFinalizeKills(opts: {
  name: string;
  lines: number;
  kills: number;
}): Promise<FinalizeKillResult> {
  const rng = createRandom(opts.name);
  const sim = createSimulator({ seed: (rng.seed % 1000) + 1 });
  const simUrl = (await sim.listen(0)).url;
  const dataDir = tempDir(opts.name);
  const servers = new Servers();
  const env = {
    ...FAST_ENGINE_ENV,
    OPENBATCH_UPSTREAM_URL: `${simUrl}/v1`,
    OPENBATCH_UPSTREAM_MAX_CONCURRENCY: '64',
  };
  const db = () => new Database(dbPath(dataDir), { readonly: true });
  try {
    const ids = Array.from({ length: opts.lines }, (_, i) => `f-${i}`);
    let proc: ServerProcess = await servers.spawn(dataDir, env);
    const { batchId } = await submitBatch(
      clientFor(proc.baseURL),
      jsonlOf(ids.map((id) => taggedLine(id))),
    );
    const completedWithoutFiles: string[] = [];
    const phases: string[] = [];
    let killsWhileFinalizing = 0;
    // Finalizing writes ~20,000–50,000 lines per second here (answers are copied as text, not
    // re-serialised): spread the kills over the first part of that window.
    let finalizeMs = Math.max(200, opts.lines * 0.02);
    for (let k = 0; k < opts.kills; k++) {
      const reader = db();
      const statusOf = () =>
        (
          reader.prepare(`SELECT status FROM batches WHERE id = ?`).get(batchId) as {
            status: string;
          }
        ).status;
      try {
        await waitUntil(
          () => statusOf() !== 'validating' && statusOf() !== 'in_progress',
          120_000,
          'the batch to reach finalizing',
          2,
        );
      } finally {
        reader.close();
      }
      const seenAt = Date.now();
      await sleep(rng.range(0, finalizeMs));
      await killHard(proc);
      const state = inspect(dataDir, batchId);
      if (state.status === 'finalizing') killsWhileFinalizing++;
      if (state.status === 'completed' && state.outputOk !== true)
        completedWithoutFiles.push(`kill ${k + 1}: output file row/blob mismatch`);
      phases.push(`${state.status}${state.tmp > 0 ? '+tmp' : ''}@${Date.now() - seenAt}ms`);
      if (state.status === 'completed') {
        // Finalizing got faster than our delays: shorten them for the next rounds.
        finalizeMs = Math.max(20, finalizeMs / 2);
        proc = await servers.spawn(dataDir, env);
        break;
      }
      proc = await servers.spawn(dataDir, env);
    }
    const client = clientFor(proc.baseURL);
    const batch = await waitTerminal(client, batchId, 120_000);
    const { output, errors, counts } = await resultsOf(client, batch);
    const rawOutput = await fileText(client, batch.output_file_id);
    if (!rawOutput.endsWith('\n') || output.length !== (counts?.completed ?? -1))
      completedWithoutFiles.push('final output file is truncated');
    const report = check({
      inputIds: ids,
      calls: sim.calls(),
      outputLines: output,
      errorLines: errors,
      counts,
    });
    const why =
      `${formatReport(report, rng.tag)}\n${rng.tag} kills (status at kill, +tmp = temp output file present): ` +
      `[${phases.join(', ')}] killsWhileFinalizing=${killsWhileFinalizing} status=${batch.status} ` +
      `orphanBlobs=${orphanBlobs(dataDir).length}`;
    console.log(why);
    return {
      why,
      status: batch.status,
      report,
      completedWithoutFiles,
      killsWhileFinalizing,
      outputLines: output.length,
    };
  } finally {
    await servers.killAll();
    await sim.close();
    removeDir(dataDir);
  }
}
