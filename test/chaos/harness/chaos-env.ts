/** Shared plumbing of the chaos scenarios: spawned servers, polling, database peeks, uploads. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import type { Simulator } from '../../../src/simulator/simulator.ts';
import { spawnServer, type ServerProcess } from '../../helpers/server-process.ts';
import { dbPath, leasedLines, recordedIds, withDb } from '../../helpers/store-peek.ts';
import type { RequestCounts, ResultLine } from './checker.ts';

/** Engine settings that make a spawned server react quickly (ticks, retries). */
export const FAST_ENGINE_ENV: Readonly<Record<string, string>> = {
  OPENBATCH_TICK_MS: '50',
  OPENBATCH_RETRY_INITIAL_MS: '20',
  OPENBATCH_RETRY_MAX_MS: '200',
  OPENBATCH_SHUTDOWN_GRACE_MS: '2000',
};

export const TERMINAL = ['completed', 'failed', 'expired', 'cancelled'] as const;

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `openbatch-chaos-${prefix}-`));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Polls `check` every `everyMs` until it is true; throws `what` after `timeoutMs`. */
export async function waitUntil(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
  everyMs = 25,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await sleep(everyMs);
  }
}

export function clientFor(
  baseURL: string,
  apiKey = 'chaos-key-0123456789',
  timeoutMs = 30_000,
): OpenAI {
  return new OpenAI({ apiKey, baseURL, maxRetries: 0, timeout: timeoutMs });
}

/**
 * Spawned servers of one test file. Every process is stopped by its own pid when the file ends,
 * whatever happened (a SIGSTOPped one is continued first so SIGKILL is not the only way out).
 */
export class Servers {
  readonly #live = new Set<ServerProcess>();

  async spawn(dataDir: string, env: Record<string, string>): Promise<ServerProcess> {
    const proc = await spawnServer(dataDir, env, 60_000);
    this.#live.add(proc);
    void proc.exited.then(() => this.#live.delete(proc));
    return proc;
  }

  async killAll(): Promise<void> {
    for (const proc of [...this.#live]) {
      proc.child.kill('SIGCONT');
      proc.child.kill('SIGKILL');
      await proc.exited;
    }
  }
}

/** kill -9 and wait until the process is gone. */
export async function killHard(proc: ServerProcess): Promise<void> {
  proc.child.kill('SIGKILL');
  await proc.exited;
}

/** Upstream call-log position: the seq of the last call (0 when none). */
export function lastSeq(sim: Simulator): number {
  const calls = sim.calls();
  return calls.length === 0 ? 0 : (calls[calls.length - 1]?.seq ?? 0);
}

/** A chat line tagged for the checker; `directive` adds more `[sim:…]` parts (e.g. `hang`). */
export function taggedLine(customId: string, directive = '', model = 'gpt-4o-mini'): object {
  const parts = directive === '' ? `id=${customId}` : `${directive};id=${customId}`;
  return {
    custom_id: customId,
    method: 'POST',
    url: '/v1/chat/completions',
    body: {
      model,
      messages: [{ role: 'user', content: `Say something about ${customId} [sim:${parts}]` }],
      max_tokens: 16,
    },
  };
}

export function jsonlOf(lines: readonly (object | string)[]): string {
  return lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n';
}

/** Writes JSONL to a temp file (for streamed uploads of big inputs) and returns its path. */
export function writeJsonlFile(dir: string, lines: readonly (object | string)[]): string {
  const path = join(dir, 'input.jsonl');
  writeFileSync(path, jsonlOf(lines));
  return path;
}

/** Uploads `content` as a batch input and creates a chat-completions batch from it. */
export async function submitBatch(
  client: OpenAI,
  content: string | Buffer,
): Promise<{ fileId: string; batchId: string }> {
  const file = await client.files.create({
    file: await toFile(Buffer.from(content), 'input.jsonl'),
    purpose: 'batch',
  });
  const batch = await client.batches.create({
    input_file_id: file.id,
    endpoint: '/v1/chat/completions',
    completion_window: '24h',
  });
  return { fileId: file.id, batchId: batch.id };
}

export async function waitTerminal(
  client: OpenAI,
  batchId: string,
  timeoutMs: number,
): Promise<OpenAI.Batches.Batch> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const batch = await client.batches.retrieve(batchId);
    if ((TERMINAL as readonly string[]).includes(batch.status)) return batch;
    if (Date.now() > deadline)
      throw new Error(`batch ${batchId} still ${batch.status} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

export async function fileText(client: OpenAI, fileId: string | null | undefined): Promise<string> {
  if (!fileId) return '';
  return (await client.files.content(fileId)).text();
}

export function parseJsonl(text: string): ResultLine[] {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as ResultLine);
}

export async function resultsOf(
  client: OpenAI,
  batch: OpenAI.Batches.Batch,
): Promise<{ output: ResultLine[]; errors: ResultLine[]; counts: RequestCounts | null }> {
  return {
    output: parseJsonl(await fileText(client, batch.output_file_id)),
    errors: parseJsonl(await fileText(client, batch.error_file_id)),
    counts: batch.request_counts ?? null,
  };
}

// ---------------------------------------------------------------------------------------------
// Database peeks (read-only connections; the server may be running or dead): test/helpers/store-peek.ts.

export { dbPath, withDb };

/**
 * custom_ids leased with no recorded outcome (undone lines of leased chunks: in flight, or
 * claimed ahead) and recorded (in the committed spools or published files, or quarantined).
 */
export function itemStates(
  dataDir: string,
  batchId: string,
): { leased: Set<string>; recorded: Set<string> } {
  return {
    leased: new Set(leasedLines(dataDir, batchId).map((l) => l.custom_id)),
    recorded: recordedIds(dataDir, batchId),
  };
}

export function integrityCheck(dataDir: string): string {
  return withDb(dataDir, (db) =>
    (db.pragma('integrity_check') as { integrity_check: string }[])
      .map((r) => r.integrity_check)
      .join('; '),
  );
}
