/**
 * One batch through `openbatch serve`, measured from outside: wall time per phase, the server's
 * CPU time and peak RSS from /proc, and what its data directory holds afterwards. The server is a
 * black box here (HTTP, a child process, a directory), so the figures survive a rewrite of it.
 */
import { join } from 'node:path';
import {
  createApiClient,
  TERMINAL_STATUSES,
  type ApiClient,
  type BatchView,
} from './api-client.ts';
import { startServer, withTempDir, type Child } from './bench-helpers.ts';
import { databaseBytes, directoryBytes } from './disk-usage.ts';
import { writeJsonl, type RequestLine } from './input-files.ts';
import { cpuSeconds, peakRssMiB } from './proc-stats.ts';

/** Seconds spent in each step, as seen by a client polling every POLL_MS. */
export interface Phases {
  upload: number;
  validating: number;
  inProgress: number;
  finalizing: number;
  download: number;
}

export interface BatchRun {
  lines: number;
  /** Upload start → output downloaded. */
  seconds: number;
  phases: Phases;
  /** Server CPU from just before the upload to the moment the batch was seen completed. */
  serverCpuSeconds: number;
  peakRssMiB: number;
  dataDirBytes: number;
  databaseBytes: number;
  inputBytes: number;
  /** Output file plus error file, if any. */
  outputBytes: number;
}

export interface BatchRunOptions {
  simUrl: string;
  lines: number;
  lineAt: (i: number) => RequestLine;
  /** Extra environment for the server (concurrency, limits). */
  serverEnv?: Record<string, string>;
}

const POLL_MS = 50;
// The server's defaults (200 MiB per batch file, 50,000 lines) would refuse the large inputs.
const MIN_UPLOAD_LIMIT_BYTES = 512 * 1024 * 1024;
const MIN_MAX_LINES = 50_000;

/** Writes the input, starts a server on a fresh data dir, runs the batch and measures it. */
export function runMeasuredBatch(options: BatchRunOptions): Promise<BatchRun> {
  return withTempDir('run', async (dir) => {
    const inputPath = join(dir, 'input.jsonl');
    const inputBytes = await writeJsonl(inputPath, options.lines, options.lineAt);
    const dataDir = join(dir, 'data');
    const server = await startServer(dataDir, options.simUrl, {
      ...uploadLimitsFor(inputBytes, options.lines),
      ...options.serverEnv,
    });
    try {
      return { ...(await measure(server, dataDir, inputPath, options.lines)), inputBytes };
    } finally {
      await server.stop();
    }
  });
}

/** Server limits raised to fit an input of this size (names as the server reads them). */
export function uploadLimitsFor(inputBytes: number, lines: number): Record<string, string> {
  const bytes = String(Math.max(MIN_UPLOAD_LIMIT_BYTES, 2 * inputBytes));
  return {
    OPENBATCH_MAX_FILE_BYTES: bytes,
    OPENBATCH_MAX_BATCH_FILE_BYTES: bytes,
    OPENBATCH_MAX_LINES: String(Math.max(MIN_MAX_LINES, lines)),
  };
}

async function measure(
  server: Child,
  dataDir: string,
  inputPath: string,
  lines: number,
): Promise<Omit<BatchRun, 'inputBytes'>> {
  const api = createApiClient(server.url);
  const pid = server.proc.pid!;
  const cpuBefore = cpuSeconds(pid);
  const startedMs = performance.now();
  const fileId = await api.uploadFile(inputPath);
  const uploadedMs = performance.now();
  const { batch, firstSeenMs } = await waitForTerminal(api, await api.createBatch(fileId));
  const serverCpuSeconds = cpuSeconds(pid) - cpuBefore;
  const completedMs = performance.now();
  const outputBytes = await downloadResults(api, batch, lines);
  const endedMs = performance.now();
  return {
    lines,
    seconds: (endedMs - startedMs) / 1000,
    phases: phasesOf({ startedMs, uploadedMs, completedMs, endedMs }, firstSeenMs),
    serverCpuSeconds,
    peakRssMiB: peakRssMiB(pid),
    dataDirBytes: directoryBytes(dataDir),
    databaseBytes: databaseBytes(dataDir),
    outputBytes,
  };
}

/** Polls until the batch ends, noting when each status was first seen. */
export async function waitForTerminal(
  api: ApiClient,
  created: BatchView,
): Promise<{ batch: BatchView; firstSeenMs: Map<string, number> }> {
  const firstSeenMs = new Map([[created.status, performance.now()]]);
  let batch = created;
  while (!TERMINAL_STATUSES.includes(batch.status)) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    batch = await api.retrieveBatch(batch.id);
    if (!firstSeenMs.has(batch.status)) firstSeenMs.set(batch.status, performance.now());
  }
  return { batch, firstSeenMs };
}

/** Downloads output and error files; a batch that did not fully succeed makes every figure moot. */
async function downloadResults(api: ApiClient, batch: BatchView, lines: number): Promise<number> {
  const output = batch.output_file_id
    ? await api.downloadFile(batch.output_file_id)
    : { bytes: 0, lines: 0 };
  const errors = batch.error_file_id
    ? await api.downloadFile(batch.error_file_id)
    : { bytes: 0, lines: 0 };
  if (batch.status !== 'completed' || output.lines !== lines)
    throw new Error(
      `batch ${batch.id} ${batch.status}: ${output.lines} output and ${errors.lines} error lines of ${lines}`,
    );
  return output.bytes + errors.bytes;
}

interface Marks {
  startedMs: number;
  uploadedMs: number;
  completedMs: number;
  endedMs: number;
}

// A status the poll never saw (a phase shorter than POLL_MS) gets the start of the next one seen.
function phasesOf(marks: Marks, firstSeenMs: Map<string, number>): Phases {
  const finalizingMs = firstSeenMs.get('finalizing') ?? marks.completedMs;
  const inProgressMs = firstSeenMs.get('in_progress') ?? finalizingMs;
  const seconds = (from: number, to: number): number => Math.max(0, to - from) / 1000;
  return {
    upload: seconds(marks.startedMs, marks.uploadedMs),
    validating: seconds(marks.uploadedMs, inProgressMs),
    inProgress: seconds(inProgressMs, finalizingMs),
    finalizing: seconds(finalizingMs, marks.completedMs),
    download: seconds(marks.completedMs, marks.endedMs),
  };
}
