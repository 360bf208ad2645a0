import type { BatchResultsPage, ResultsCursor } from '../protocol/batch-results.ts';
import { formatResultsCursor } from '../protocol/batch-results.ts';
import { isTerminalStatus } from '../protocol/batch-status.ts';
import { badRequest, batchNotFound } from '../domain/app-error.ts';
import type { BatchRecord } from '../domain/records.ts';
import type { EngineDeps } from './engine-deps.ts';
import { spoolKey } from './result-recorder.ts';

/** A page never carries more than this much line text (and always at least one line). */
const PAGE_BYTES = 8 * 1024 * 1024;
const FIRST_READ_BYTES = 256 * 1024;

/** One file of results as far as it is final: its committed bytes and how to read a range. */
interface ResultSource {
  length: number;
  read(start: number, end: number): Promise<Buffer>;
}

/** A cursor that is not one this batch handed out (past the end, or not at a line start). */
const badCursor = (why: string) =>
  badRequest(`Invalid 'after': ${why}; pass a next_cursor this batch's results returned.`, {
    param: 'after',
    wireCode: 'invalid_value',
  });

/**
 * Reads finished lines of a batch from `cursor` on. While it runs they come from its spools, up
 * to their committed lengths (bytes there never change); once it ended, from its output and error
 * files, which start with exactly those bytes (the output file is the spool, the error file the
 * spool plus the lines that never ran). So one byte-offset cursor per file stays valid across
 * finalizing, and each line is returned exactly once however lines finish.
 */
export async function readResultsPage(
  deps: EngineDeps,
  batchId: string,
  cursor: ResultsCursor,
  limit: number,
): Promise<BatchResultsPage> {
  for (let attempt = 0; ; attempt++) {
    const batch = await deps.store.getBatchById(batchId);
    if (!batch) throw batchNotFound(batchId);
    try {
      return await readPage(batch, await sourcesOf(deps, batch), cursor, limit);
    } catch (err) {
      // The batch ended between the two reads and its spools are gone: read its files.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt > 0) throw err;
    }
  }
}

async function sourcesOf(
  deps: EngineDeps,
  batch: BatchRecord,
): Promise<{ output: ResultSource; error: ResultSource }> {
  const { store, blobs } = deps;
  if (isTerminalStatus(batch.status)) {
    const fileSource = async (id: string | null): Promise<ResultSource> => {
      const file = id === null ? null : await store.getFile(batch.project, id);
      if (!file) return { length: 0, read: async () => Buffer.alloc(0) };
      return { length: file.bytes, read: (s, e) => blobs.readRange(file.id, s, e) };
    };
    return {
      output: await fileSource(batch.output_file_id),
      error: await fileSource(batch.error_file_id),
    };
  }
  const lengths = await store.spoolLengths(batch.id);
  const spool = (kind: 'output' | 'error', length: number): ResultSource => ({
    length,
    // A shared store keeps the answers itself (every process of a cluster writes them).
    read: (s, e) =>
      store.shared
        ? collect(store.readAnswers(batch.id, kind, s, e))
        : blobs.readSpoolRange(spoolKey(batch.id, kind), s, e),
  });
  return {
    output: spool('output', lengths.output_bytes),
    error: spool('error', lengths.error_bytes),
  };
}

async function readPage(
  batch: BatchRecord,
  sources: { output: ResultSource; error: ResultSource },
  cursor: ResultsCursor,
  limit: number,
): Promise<BatchResultsPage> {
  const data: Record<string, unknown>[] = [];
  const budget = { lines: limit, bytes: PAGE_BYTES };
  const output = await readLines(sources.output, cursor.output, budget, data);
  const error = await readLines(sources.error, cursor.error, budget, data);
  return {
    object: 'list',
    data,
    next_cursor: formatResultsCursor({ output, error }),
    has_more: output < sources.output.length || error < sources.error.length,
    batch_status: batch.status,
  };
}

/** Appends whole lines from `start` to `into` while the budget lasts; returns the new offset. */
async function readLines(
  source: ResultSource,
  start: number,
  budget: { lines: number; bytes: number },
  into: Record<string, unknown>[],
): Promise<number> {
  if (start > source.length) throw badCursor('it is past the end of the results');
  if (start > 0 && (await source.read(start - 1, start))[0] !== 0x0a)
    throw badCursor('it is not at the start of a line');
  let pos = start;
  let window = FIRST_READ_BYTES;
  while (budget.lines > 0 && pos < source.length && (budget.bytes > 0 || into.length === 0)) {
    const end = Math.min(source.length, pos + window);
    const buf = await source.read(pos, end);
    const last = buf.lastIndexOf(0x0a);
    if (last === -1) {
      if (end === source.length) break; // no line end before the committed end: nothing whole
      window *= 2; // one line longer than the window: read more of it
      continue;
    }
    let lineStart = 0;
    for (let nl = buf.indexOf(0x0a); nl !== -1 && nl <= last; nl = buf.indexOf(0x0a, lineStart)) {
      into.push(JSON.parse(buf.toString('utf8', lineStart, nl)) as Record<string, unknown>);
      budget.lines -= 1;
      budget.bytes -= nl + 1 - lineStart;
      lineStart = nl + 1;
      if (budget.lines === 0 || budget.bytes <= 0) break;
    }
    pos += lineStart;
  }
  return pos;
}

async function collect(pieces: AsyncIterable<Buffer>): Promise<Buffer> {
  const all: Buffer[] = [];
  for await (const piece of pieces) all.push(piece);
  return Buffer.concat(all);
}
