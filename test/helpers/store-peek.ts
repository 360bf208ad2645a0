/**
 * Read-only peeks into a data directory's store, for tests that check what the engine made
 * durable (the server may be running or dead). The store keeps no per-line rows:
 *
 * - `chunks`: one row per run of consecutive input lines (byte range into the input blob at
 *   `<dataDir>/blobs/<input_file_id>`, `offsets` = little-endian uint32 start of each line
 *   relative to `byte_start`), with a `done` bitmap (line finished, or moved into a chunk of its
 *   own) and a `sent` bitmap (request out under the current lease).
 * - answers: appended to `<dataDir>/spool/<batch_id>_output|_error`, committed up to
 *   `batches.output_bytes|error_bytes`; published as the output/error files at finalize.
 *
 * The decoding here is written from that description on purpose, not imported from src/, so a
 * bug in the engine's own decoding cannot hide from the tests that use it.
 */
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

export type ChunkState =
  'pending' | 'queued' | 'leased' | 'done' | 'cancelled' | 'expired' | 'failed';

/** One parsed line of a spool or of an output/error file. */
export type PeekLine = Record<string, any>;

/** Error codes of lines that never ran (the batch was cancelled or expired first). */
export const NOT_RUN_CODES: readonly string[] = ['batch_cancelled', 'batch_expired'];

const FINAL_STATUSES = ['completed', 'expired', 'cancelled', 'failed'];

export function dbPath(dataDir: string): string {
  return join(dataDir, 'openbatch.db');
}

/** Runs `use` on a read-only connection to the data directory's database. */
export function withDb<T>(dataDir: string, use: (db: Database.Database) => T): T {
  const db = new Database(dbPath(dataDir), { readonly: true, fileMustExist: true });
  try {
    return use(db);
  } finally {
    db.close();
  }
}

interface BatchRow {
  id: string;
  status: string;
  input_file_id: string;
  output_file_id: string | null;
  error_file_id: string | null;
  output_bytes: number;
  error_bytes: number;
}

function batchRow(db: Database.Database, batchId: string): BatchRow {
  const row = db
    .prepare(
      `SELECT id, status, input_file_id, output_file_id, error_file_id, output_bytes, error_bytes
       FROM batches WHERE id = ?`,
    )
    .get(batchId) as BatchRow | undefined;
  if (!row) throw new Error(`store-peek: no batch ${batchId}`);
  return row;
}

function batchIds(db: Database.Database): string[] {
  return (db.prepare(`SELECT id FROM batches ORDER BY seq`).all() as { id: string }[]).map(
    (r) => r.id,
  );
}

function parseJsonl(text: string): PeekLine[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as PeekLine);
}

const isMissing = (err: unknown): boolean => (err as NodeJS.ErrnoException).code === 'ENOENT';

/** The first `bytes` bytes of a file (the committed prefix of a spool). */
function readPrefix(path: string, bytes: number): Buffer {
  if (bytes === 0) return Buffer.alloc(0);
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    let got = 0;
    while (got < bytes) {
      const n = readSync(fd, buf, got, bytes - got, got);
      if (n === 0)
        throw new Error(`store-peek: ${path} is shorter than its committed ${bytes} bytes`);
      got += n;
    }
    return buf;
  } finally {
    closeSync(fd);
  }
}

function publishedLines(dataDir: string, fileId: string | null): PeekLine[] {
  if (fileId === null) return [];
  return parseJsonl(readFileSync(join(dataDir, 'blobs', fileId), 'utf8'));
}

function linesOf(dataDir: string, b: BatchRow): { output: PeekLine[]; error: PeekLine[] } | null {
  if (FINAL_STATUSES.includes(b.status) || b.output_file_id !== null || b.error_file_id !== null) {
    return {
      output: publishedLines(dataDir, b.output_file_id),
      error: publishedLines(dataDir, b.error_file_id),
    };
  }
  try {
    const spool = (file: 'output' | 'error', bytes: number) =>
      parseJsonl(readPrefix(join(dataDir, 'spool', `${b.id}_${file}`), bytes).toString('utf8'));
    return { output: spool('output', b.output_bytes), error: spool('error', b.error_bytes) };
  } catch (err) {
    if (isMissing(err)) return null; // published and removed meanwhile: read the files
    throw err;
  }
}

/**
 * The lines recorded for a batch so far, exactly as its output and error files hold (or will
 * hold) them: the committed prefix of its spools while it runs, the published files once it is
 * finalized (those also hold the not-run and poisoned lines written at finalize).
 */
export function recordedLines(
  dataDir: string,
  batchId: string,
): { output: PeekLine[]; error: PeekLine[] } {
  for (let attempt = 0; attempt < 3; attempt++) {
    const b = withDb(dataDir, (db) => batchRow(db, batchId));
    const lines = linesOf(dataDir, b);
    if (lines) return lines;
  }
  throw new Error(`store-peek: the spools of ${batchId} keep disappearing`);
}

/**
 * custom_ids whose line has a final result: recorded in the output or error spool/file (not-run
 * lines of a cancelled or expired batch excluded), or quarantined as poison (a one-line chunk in
 * state `failed`, whose error line is only written at finalize). Such a line is never sent again.
 * Without `batchId`, over every batch in the store.
 */
export function recordedIds(dataDir: string, batchId?: string): Set<string> {
  const ids = batchId === undefined ? withDb(dataDir, batchIds) : [batchId];
  const out = new Set<string>();
  for (const id of ids) {
    const { output, error } = recordedLines(dataDir, id);
    for (const l of output) out.add(l.custom_id as string);
    for (const l of error) {
      if (!NOT_RUN_CODES.includes(l.error?.code as string)) out.add(l.custom_id as string);
    }
    for (const l of chunkLines(dataDir, id, ['failed'])) if (!l.done) out.add(l.custom_id);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Chunks and their lines.

interface ChunkRow {
  chunk_id: number;
  state: ChunkState;
  line_count: number;
  byte_start: number;
  byte_end: number;
  offsets: Buffer;
  done: Buffer | null;
  sent: Buffer | null;
  lease_gen: number;
}

/** One line of a chunk, as the store holds it. */
export interface PeekChunkLine {
  custom_id: string;
  chunk_id: number;
  /** Position in its chunk. */
  index: number;
  state: ChunkState;
  lease_gen: number;
  /** Finished: recorded, or moved into a chunk of its own (then it shows there too). */
  done: boolean;
  /** Its request went out under the chunk's current lease (and the mark was committed). */
  sent: boolean;
}

const bit = (map: Buffer | null, i: number): boolean =>
  map !== null && ((map[i >> 3] ?? 0) & (1 << (i & 7))) !== 0;

/** Where a chunk's lines are: `offsets[i]` is line i's start relative to `byte_start`. */
export interface PeekSpan {
  byte_start: number;
  byte_end: number;
  offsets: ArrayLike<number>;
}

/**
 * The custom_id of line `index` of `span`, read from `bytes` (the input file from `bytes_at`
 * on, 0 for the whole file). The line runs to the next line's start or to `byte_end`, trailing
 * newline and blank lines included (JSON whitespace).
 */
export function customIdAt(bytes: Buffer, span: PeekSpan, index: number, bytesAt = 0): string {
  const start = span.byte_start + (span.offsets[index] as number);
  const next = span.offsets[index + 1];
  const end = next === undefined ? span.byte_end : span.byte_start + next;
  const text = bytes.toString('utf8', start - bytesAt, end - bytesAt);
  return (JSON.parse(text) as { custom_id: string }).custom_id;
}

function offsetsOf(row: ChunkRow): number[] {
  if (row.offsets.length !== row.line_count * 4)
    throw new Error(
      `store-peek: chunk ${row.chunk_id} has ${row.offsets.length} offset bytes for ${row.line_count} lines`,
    );
  return Array.from({ length: row.line_count }, (_, i) => row.offsets.readUInt32LE(i * 4));
}

function chunkRows(
  db: Database.Database,
  batchId: string,
  states?: readonly ChunkState[],
): ChunkRow[] {
  const filter = states ? ` AND state IN (${states.map(() => '?').join(', ')})` : '';
  return db
    .prepare(
      `SELECT chunk_id, state, line_count, byte_start, byte_end, offsets, done, sent, lease_gen
       FROM chunks WHERE batch_id = ?${filter} ORDER BY chunk_id`,
    )
    .all(batchId, ...(states ?? [])) as ChunkRow[];
}

/**
 * Every line of the batch's chunks (in `states`, if given), its custom_id read from the input
 * blob. A line moved into a chunk of its own appears twice: done in the old chunk, in the new.
 */
export function chunkLines(
  dataDir: string,
  batchId: string,
  states?: readonly ChunkState[],
): PeekChunkLine[] {
  const { rows, inputFileId } = withDb(dataDir, (db) => ({
    rows: chunkRows(db, batchId, states),
    inputFileId: batchRow(db, batchId).input_file_id,
  }));
  if (rows.length === 0) return [];
  const fd = openSync(join(dataDir, 'blobs', inputFileId), 'r');
  try {
    const lines: PeekChunkLine[] = [];
    for (const row of rows) {
      const bytes = Buffer.alloc(row.byte_end - row.byte_start);
      if (readSync(fd, bytes, 0, bytes.length, row.byte_start) !== bytes.length)
        throw new Error(`store-peek: chunk ${row.chunk_id} reaches past the input file`);
      const span = { byte_start: row.byte_start, byte_end: row.byte_end, offsets: offsetsOf(row) };
      for (let index = 0; index < row.line_count; index++) {
        lines.push({
          custom_id: customIdAt(bytes, span, index, row.byte_start),
          chunk_id: row.chunk_id,
          index,
          state: row.state,
          lease_gen: row.lease_gen,
          done: bit(row.done, index),
          sent: bit(row.sent, index),
        });
      }
    }
    return lines;
  } finally {
    closeSync(fd);
  }
}

/** Lines leased and not finished: claimed (and maybe sent) with no recorded outcome. */
export function leasedLines(dataDir: string, batchId: string): PeekChunkLine[] {
  return chunkLines(dataDir, batchId, ['leased']).filter((l) => !l.done);
}

/**
 * Unfinished lines by the state of the chunk holding them (a line moved into a chunk of its own
 * counts there only). Together with the recorded lines they make up the batch.
 */
export function undoneLineCounts(
  dataDir: string,
  batchId: string,
): Partial<Record<ChunkState, number>> {
  return withDb(dataDir, (db) => {
    const counts: Partial<Record<ChunkState, number>> = {};
    for (const row of chunkRows(db, batchId)) {
      let undone = 0;
      for (let i = 0; i < row.line_count; i++) if (!bit(row.done, i)) undone++;
      if (undone > 0) counts[row.state] = (counts[row.state] ?? 0) + undone;
    }
    return counts;
  });
}

/** Unfinished lines in chunks of the given states. */
export function undoneLines(
  dataDir: string,
  batchId: string,
  states: readonly ChunkState[],
): number {
  const counts = undoneLineCounts(dataDir, batchId);
  return states.reduce((sum, s) => sum + (counts[s] ?? 0), 0);
}

/** Leases lost while a line's request was out, summed over the chunks (of one batch, or all). */
export function leaseLosses(dataDir: string, batchId?: string): number {
  return withDb(dataDir, (db) => {
    const row = (
      batchId === undefined
        ? db.prepare(`SELECT COALESCE(SUM(lease_losses), 0) AS n FROM chunks`).get()
        : db
            .prepare(`SELECT COALESCE(SUM(lease_losses), 0) AS n FROM chunks WHERE batch_id = ?`)
            .get(batchId)
    ) as { n: number };
    return row.n;
  });
}
