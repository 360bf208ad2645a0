import type pg from 'pg';
import { unpackOffsets } from '../../domain/chunk-lines.ts';
import type { ChunkLease, ClaimedChunk, ItemOutcome, LineKey } from '../../domain/records.ts';
import { bitmapOf, setBit } from '../../lib/bitmap.ts';
import {
  filterApplicable,
  loadChunk,
  planGroup,
  type BatchDelta,
  type ChunkRow,
  type LeaseView,
  type LoadedChunk,
} from '../chunk-plan.ts';
import { planTakeBack, type SweepOptions } from '../sweep-plan.ts';
import type { LeaseSweep, SpoolLengths } from '../store.ts';
import {
  insertAnswers,
  insertSplits,
  releaseChunks,
  writeChunks,
  writeDeltas,
  writeSpoolLengths,
  writeTakeBacks,
} from './pg-chunk-writes.ts';
import { inTransaction, type Queryable } from './pg-pool.ts';

/** Most chunks one claim looks at (the window that sums their lines is bounded by it). */
const CLAIM_SCAN = 32;

interface ClaimedRow {
  chunk_id: number;
  batch_id: string;
  input_file_id: string;
  endpoint: string;
  line_count: number;
  byte_start: number;
  byte_end: number;
  offsets: Buffer;
  done: Buffer | null;
  attempts: number;
  lease_gen: number;
  suspect: boolean;
  deadline_ms: number;
  first_line: number;
}

// Earliest deadline first, then line number across batches (round-robin), as on SQLite. The
// candidates are locked with SKIP LOCKED: processes claiming at once take different chunks and
// never wait for each other. Only chunks of running batches are claimed.
const CLAIM_SQL = `
  WITH candidates AS (
    SELECT chunk_id, line_count, byte_end - byte_start AS bytes, deadline_ms, first_line
    FROM chunks
    WHERE state = 'queued' AND upstream = $1 AND not_before_ms <= $2
      AND EXISTS (SELECT 1 FROM batches
        WHERE batches.id = chunks.batch_id AND batches.status = 'in_progress')
    ORDER BY deadline_ms, first_line, chunk_id
    LIMIT ${CLAIM_SCAN}
    FOR UPDATE SKIP LOCKED
  ), windowed AS (
    SELECT chunk_id, line_count, bytes,
      SUM(line_count) OVER w AS lines_to, SUM(bytes) OVER w AS bytes_to
    FROM candidates
    WINDOW w AS (ORDER BY deadline_ms, first_line, chunk_id ROWS UNBOUNDED PRECEDING)
  )
  UPDATE chunks c SET state = 'leased', attempts = c.attempts + 1, lease_gen = c.lease_gen + 1,
    lease_expires_ms = $3, sent = NULL
  FROM windowed w, batches b
  WHERE c.chunk_id = w.chunk_id AND b.id = c.batch_id
    AND w.lines_to - w.line_count < $4 AND w.bytes_to - w.bytes < $5
  RETURNING c.chunk_id, c.batch_id, b.input_file_id, b.endpoint, c.line_count, c.byte_start,
    c.byte_end, c.offsets, c.done, c.attempts, c.lease_gen,
    (c.lease_losses + c.unmarked_losses > 0) AS suspect, c.deadline_ms, c.first_line`;

/**
 * The durable chunk queue on PostgreSQL: the same decisions as on SQLite (store/chunk-plan.ts),
 * with claims that many processes can run at once, and group commits as multi-row statements.
 */
export class PgChunkQueue {
  readonly #pool: pg.Pool;

  constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  async claim(
    upstream: string,
    limits: { maxLines: number; maxBytes: number },
    leaseMs: number,
    nowMs: number,
  ): Promise<ClaimedChunk[]> {
    const rows = await inTransaction(
      this.#pool,
      async (tx) =>
        (
          await tx.query<ClaimedRow>(CLAIM_SQL, [
            upstream,
            nowMs,
            nowMs + leaseMs,
            limits.maxLines,
            limits.maxBytes,
          ])
        ).rows,
      { durable: false },
    );
    rows.sort(
      (a, b) =>
        a.deadline_ms - b.deadline_ms || a.first_line - b.first_line || a.chunk_id - b.chunk_id,
    );
    return rows.map((row) => ({
      chunk_id: row.chunk_id,
      lease_gen: row.lease_gen,
      batch_id: row.batch_id,
      input_file_id: row.input_file_id,
      endpoint: row.endpoint,
      byte_start: row.byte_start,
      byte_end: row.byte_end,
      offsets: unpackOffsets(row.offsets),
      done: bitmapOf(row.done, row.line_count),
      attempts: row.attempts,
      suspect: row.suspect,
    }));
  }

  async renew(leases: readonly ChunkLease[], untilMs: number): Promise<number> {
    if (leases.length === 0) return 0;
    return inTransaction(
      this.#pool,
      async (tx) =>
        (
          await tx.query(
            `UPDATE chunks c SET lease_expires_ms = $3
             FROM unnest($1::bigint[], $2::int[]) AS v(chunk_id, lease_gen)
             WHERE c.chunk_id = v.chunk_id AND c.lease_gen = v.lease_gen AND c.state = 'leased'`,
            [leases.map((l) => l.chunk_id), leases.map((l) => l.lease_gen), untilMs],
          )
        ).rowCount ?? 0,
      { durable: false },
    );
  }

  /** Sets sent bits of suspect chunks' lines before their send (durable: the send follows). */
  async markSent(lines: readonly LineKey[]): Promise<void> {
    if (lines.length === 0) return;
    await inTransaction(this.#pool, async (tx) => {
      const chunks = await lockChunks(
        tx,
        lines.map((l) => l.chunk_id),
      );
      const touched = new Map<number, LoadedChunk>();
      for (const key of lines) {
        const chunk = chunks.get(key.chunk_id);
        if (!chunk || chunk.state !== 'leased' || chunk.lease_gen !== key.lease_gen) continue;
        setBit(chunk.sent, key.index);
        touched.set(chunk.chunk_id, chunk);
      }
      await writeChunks(
        tx,
        [...touched.values()].map((c) => ({
          kind: 'maps' as const,
          chunk_id: c.chunk_id,
          done: c.done,
          sent: c.sent,
        })),
      );
    });
  }

  async applicable(outcomes: readonly ItemOutcome[]): Promise<ItemOutcome[]> {
    const ids = [...new Set(outcomes.map((o) => o.chunk_id))];
    const { rows } = await this.#pool.query<{
      chunk_id: number;
      state: string;
      lease_gen: number;
      line_count: number;
      done: Buffer | null;
    }>(
      `SELECT chunk_id, state, lease_gen, line_count, done FROM chunks WHERE chunk_id = ANY($1::bigint[])`,
      [ids],
    );
    const leases = new Map<number, LeaseView | null>(ids.map((id) => [id, null]));
    for (const row of rows)
      leases.set(row.chunk_id, { ...row, done: bitmapOf(row.done, row.line_count) });
    return filterApplicable(outcomes, leases);
  }

  /** The group commit: every write of the group in one transaction, kinds as multi-row statements. */
  async record(
    outcomes: readonly ItemOutcome[],
    spools: ReadonlyMap<string, SpoolLengths>,
  ): Promise<void> {
    await inTransaction(this.#pool, async (tx) => {
      const ids = outcomes.filter((o) => o.kind !== 'release').map((o) => o.chunk_id);
      const plan = planGroup(outcomes, await lockChunks(tx, ids));
      await insertSplits(tx, plan.splits);
      await writeChunks(tx, plan.writes);
      await releaseChunks(tx, plan.releases);
      await writeDeltas(tx, plan.deltas);
      await insertAnswers(tx, outcomes);
      await writeSpoolLengths(tx, spools);
    });
  }

  async sweep(nowMs: number, opts: SweepOptions): Promise<LeaseSweep> {
    return inTransaction(this.#pool, async (tx) => {
      const cutoff = opts.all ? Number.MAX_SAFE_INTEGER : nowMs;
      const { rows } = await tx.query<ChunkRow>(
        `SELECT * FROM chunks WHERE state = 'leased' AND lease_expires_ms <= $1
         ORDER BY chunk_id FOR UPDATE SKIP LOCKED`,
        [cutoff],
      );
      const result: LeaseSweep = { revoked: [], poisoned: 0 };
      const deltas = new Map<string, BatchDelta>();
      const plans = rows.map((row) => {
        const chunk = loadChunk(row);
        result.revoked.push({ chunk_id: chunk.chunk_id, lease_gen: chunk.lease_gen });
        return planTakeBack(chunk, nowMs, opts, deltas);
      });
      await insertSplits(
        tx,
        plans.flatMap((p) => p.splits),
      );
      await writeTakeBacks(
        tx,
        plans.map((p) => p.write),
      );
      await writeDeltas(tx, deltas);
      result.poisoned = plans.reduce((sum, p) => sum + p.poisoned, 0);
      return result;
    });
  }
}

/** Loads and row-locks chunks for changes in this transaction (in id order: no deadlocks). */
async function lockChunks(
  tx: Queryable,
  ids: readonly number[],
): Promise<Map<number, LoadedChunk>> {
  const chunks = new Map<number, LoadedChunk>();
  if (ids.length === 0) return chunks;
  const { rows } = await tx.query<ChunkRow>(
    `SELECT * FROM chunks WHERE chunk_id = ANY($1::bigint[]) ORDER BY chunk_id FOR UPDATE`,
    [[...new Set(ids)]],
  );
  for (const row of rows) chunks.set(row.chunk_id, loadChunk(row));
  return chunks;
}
