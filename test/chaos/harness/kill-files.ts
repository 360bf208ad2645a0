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
          authorization: 'Bearer chaos-key-0123456789',
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
  const env = { ...FAST_ENGINE_ENV, OPENBATCH_API_KEYS: 'chaos-key-0123456789:p' };
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
  /** Observations of an ended batch whose output or error file was missing or short (must be none). */
  endedWithoutFiles: string[];
  /** Kills that landed while the finalizer was appending the lines that never ran. */
  killsWhileFinalizing: number;
  outputLines: number;
  orphanBlobs: number;
}

interface BatchState {
  status: string;
  /** Files of an ended batch are whole (row size = blob size); null while it has not ended. */
  filesOk: boolean | null;
  /** The error spool holds bytes past its committed length: the finalizer was writing. */
  finalizerWriting: boolean;
}

/** The batch as the database and the data dir hold it right after a kill. */
function inspect(dataDir: string, batchId: string): BatchState {
  const db = new Database(dbPath(dataDir), { readonly: true });
  try {
    const b = db
      .prepare(
        `SELECT status, output_file_id, error_file_id, error_bytes FROM batches WHERE id = ?`,
      )
      .get(batchId) as {
      status: string;
      output_file_id: string | null;
      error_file_id: string | null;
      error_bytes: number;
    };
    const whole = (id: string | null): boolean => {
      if (id === null) return true;
      const row = db.prepare(`SELECT bytes FROM files WHERE id = ?`).get(id) as
        { bytes: number } | undefined;
      return row !== undefined && row.bytes === sizeOf(join(dataDir, 'blobs', id));
    };
    const ended = b.status === 'cancelled' || b.status === 'completed';
    const spool = sizeOf(join(dataDir, 'spool', `${batchId}_error`));
    return {
      status: b.status,
      filesOk: ended ? whole(b.output_file_id) && whole(b.error_file_id) : null,
      finalizerWriting: !ended && spool > b.error_bytes,
    };
  } finally {
    db.close();
  }
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return -1;
  }
}

/**
 * Finalizing has work only for lines that never ran (answers are appended as they come, and a
 * finished batch's files are published by a hard link). So: a large batch against a slow
 * upstream is cancelled with most of its lines queued, and the server is killed `kills` times
 * while the finalizer appends their `batch_cancelled` lines (each restart starts it over).
 */
export async function runFinalizeKills(opts: {
  name: string;
  lines: number;
  kills: number;
}): Promise<FinalizeKillResult> {
  const rng = createRandom(opts.name);
  const sim = createSimulator({ seed: (rng.seed % 1000) + 1, latencyMs: 100 });
  const simUrl = (await sim.listen(0)).url;
  const dataDir = tempDir(opts.name);
  const servers = new Servers();
  const env = {
    ...FAST_ENGINE_ENV,
    OPENBATCH_UPSTREAM_URL: `${simUrl}/v1`,
    OPENBATCH_UPSTREAM_MAX_CONCURRENCY: '8',
  };
  try {
    const ids = Array.from({ length: opts.lines }, (_, i) => `f-${i}`);
    let proc: ServerProcess = await servers.spawn(dataDir, env);
    const client0 = clientFor(proc.baseURL);
    const { batchId } = await submitBatch(client0, jsonlOf(ids.map((id) => taggedLine(id))));
    await waitUntil(() => sim.calls().length >= 40, 120_000, 'the batch to be under way', 5);
    await client0.batches.cancel(batchId);
    const endedWithoutFiles: string[] = [];
    const phases: string[] = [];
    let killsWhileFinalizing = 0;
    for (let k = 0; k < opts.kills; k++) {
      // Aim at the finalizer: wait until it is appending not-run lines (or the batch ended),
      // then kill within a few ms.
      await waitUntil(
        () => {
          const st = inspect(dataDir, batchId);
          return st.finalizerWriting || st.filesOk !== null;
        },
        120_000,
        'the finalizer to write',
        1,
      );
      await sleep(rng.range(0, 8));
      await killHard(proc);
      const state = inspect(dataDir, batchId);
      if (state.finalizerWriting) killsWhileFinalizing++;
      if (state.filesOk === false) endedWithoutFiles.push(`kill ${k + 1}: file row/blob mismatch`);
      phases.push(`${state.status}${state.finalizerWriting ? '+writing' : ''}`);
      proc = await servers.spawn(dataDir, env);
      if (state.status === 'cancelled') break;
    }
    const client = clientFor(proc.baseURL);
    const batch = await waitTerminal(client, batchId, 120_000);
    const { output, errors, counts } = await resultsOf(client, batch);
    for (const id of [batch.output_file_id, batch.error_file_id]) {
      const raw = await fileText(client, id);
      if (raw !== '' && !raw.endsWith('\n')) endedWithoutFiles.push(`file ${id} is truncated`);
    }
    if (errors.some((l) => l.error?.code !== 'batch_cancelled' && l.response == null))
      endedWithoutFiles.push('an error line is neither an answer nor batch_cancelled');
    const report = check({
      inputIds: ids,
      calls: sim.calls(),
      outputLines: output,
      errorLines: errors,
      counts,
    });
    const orphans = orphanBlobs(dataDir).length;
    const why =
      `${formatReport(report, rng.tag)}\n${rng.tag} kills (status at kill, +writing = finalizer ` +
      `appending not-run lines): [${phases.join(', ')}] killsWhileFinalizing=${killsWhileFinalizing} ` +
      `status=${batch.status} output=${output.length} errors=${errors.length} orphanBlobs=${orphans}`;
    console.log(why);
    return {
      why,
      status: batch.status,
      report,
      endedWithoutFiles,
      killsWhileFinalizing,
      outputLines: output.length,
      orphanBlobs: orphans,
    };
  } finally {
    await servers.killAll();
    await sim.close();
    removeDir(dataDir);
  }
}
