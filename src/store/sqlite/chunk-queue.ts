import type { Database, Statement } from 'better-sqlite3';
import { unpackOffsets } from '../../domain/chunk-lines.ts';
import type { ChunkLease, ClaimedChunk, ItemOutcome, LineKey } from '../../domain/records.ts';
import { bitmapOf, setBit } from '../../lib/bitmap.ts';
import type { SpoolLengths } from '../store.ts';
import { filterApplicable, planGroup, type LeaseView, type LoadedChunk } from '../chunk-plan.ts';
import type { ChunkStatements } from './chunk-rows.ts';

/** Most chunks one claim looks at (the window that sums their lines is bounded by it). */
const CLAIM_SCAN = 32;

interface ClaimedRow {
  chunk_id: number;
  batch_id: string;
  line_count: number;
  byte_start: number;
  byte_end: number;
  offsets: Buffer;
  done: Buffer | null;
  attempts: number;
  lease_gen: number;
  suspect: number;
  deadline_ms: number;
  first_line: number;
}

/**
 * The durable chunk queue on SQLite's single writer. A claim is one UPDATE … RETURNING over the
 * partial queue index that leases whole chunks; every outcome is fenced by the chunk's
 * `lease_gen`, so a late answer from a lease that was lost (worker frozen, process restarted)
 * changes nothing. A group of outcomes costs one row write per chunk it touches, not per line.
 */
export class SqliteChunkQueue {
  readonly #db: Database;
  readonly #rows: ChunkStatements;
  readonly #claim: Statement;
  readonly #batchInfo: Statement;
  readonly #renew: Statement;
  readonly #leaseOf: Statement;
  readonly #release: Statement;
  readonly #spools: Statement;
  readonly #syncNormal: Statement;
  readonly #syncFull: Statement;

  constructor(db: Database, rows: ChunkStatements) {
    this.#db = db;
    this.#rows = rows;
    // Earliest deadline first; among batches with the same deadline, the chunk holding line 1 of
    // each, then the next chunk of each… (round-robin). Only running batches: a chunk requeued
    // at start-up from a batch that is cancelling or expiring is never claimed again. The window takes chunks until they hold
    // about maxLines lines and maxBytes bytes; the first chunk always goes.
    this.#claim = db.prepare(`
      UPDATE chunks SET state = 'leased', attempts = attempts + 1, lease_gen = lease_gen + 1,
        lease_expires_ms = @leaseUntil, sent = NULL
      WHERE chunk_id IN (
        SELECT chunk_id FROM (
          SELECT chunk_id, line_count, bytes,
            SUM(line_count) OVER w AS lines_to, SUM(bytes) OVER w AS bytes_to
          FROM (
            SELECT chunk_id, line_count, byte_end - byte_start AS bytes, deadline_ms, first_line
            FROM chunks
            WHERE state = 'queued' AND upstream = @upstream AND not_before_ms <= @now
              AND EXISTS (SELECT 1 FROM batches
                WHERE batches.id = chunks.batch_id AND batches.status = 'in_progress')
            ORDER BY deadline_ms, first_line, chunk_id LIMIT ${CLAIM_SCAN})
          WINDOW w AS (ORDER BY deadline_ms, first_line, chunk_id ROWS UNBOUNDED PRECEDING))
        WHERE lines_to - line_count < @maxLines AND bytes_to - bytes < @maxBytes)
      RETURNING chunk_id, batch_id, line_count, byte_start, byte_end, offsets, done, attempts,
        lease_gen, (lease_losses + unmarked_losses > 0) AS suspect, deadline_ms, first_line`);
    this.#batchInfo = db.prepare(`SELECT input_file_id, endpoint FROM batches WHERE id = ?`);
    const fenced = `WHERE chunk_id = @chunk_id AND lease_gen = @lease_gen AND state = 'leased'`;
    this.#renew = db.prepare(`UPDATE chunks SET lease_expires_ms = @until ${fenced}`);
    this.#leaseOf = db.prepare(
      `SELECT state, lease_gen, line_count, done FROM chunks WHERE chunk_id = ?`,
    );
    this.#release = db.prepare(`
      UPDATE chunks SET state = 'queued', lease_expires_ms = NULL, sent = NULL,
        attempts = attempts - @refund
      ${fenced}`);
    this.#spools = db.prepare(`
      UPDATE batches SET output_bytes = @output_bytes, error_bytes = @error_bytes WHERE id = @id`);
    this.#syncNormal = db.prepare(`PRAGMA synchronous = NORMAL`);
    this.#syncFull = db.prepare(`PRAGMA synchronous = FULL`);
  }

  claim(
    upstream: string,
    limits: { maxLines: number; maxBytes: number },
    leaseMs: number,
    nowMs: number,
  ): ClaimedChunk[] {
    const rows = this.#withoutFsync(
      () =>
        this.#claim.all({
          upstream,
          now: nowMs,
          leaseUntil: nowMs + leaseMs,
          maxLines: limits.maxLines,
          maxBytes: limits.maxBytes,
        }) as ClaimedRow[],
    );
    // RETURNING yields rows in update (rowid) order; hand them out in claim order.
    rows.sort(
      (a, b) =>
        a.deadline_ms - b.deadline_ms || a.first_line - b.first_line || a.chunk_id - b.chunk_id,
    );
    const batches = new Map<string, { input_file_id: string; endpoint: string }>();
    return rows.map((row) => {
      let batch = batches.get(row.batch_id);
      if (!batch) {
        batch = this.#batchInfo.get(row.batch_id) as { input_file_id: string; endpoint: string };
        batches.set(row.batch_id, batch);
      }
      return {
        chunk_id: row.chunk_id,
        lease_gen: row.lease_gen,
        batch_id: row.batch_id,
        input_file_id: batch.input_file_id,
        endpoint: batch.endpoint,
        byte_start: row.byte_start,
        byte_end: row.byte_end,
        offsets: unpackOffsets(row.offsets),
        done: bitmapOf(row.done, row.line_count),
        attempts: row.attempts,
        suspect: row.suspect === 1,
      };
    });
  }

  renew(leases: readonly ChunkLease[], untilMs: number): number {
    return this.#withoutFsync(() =>
      this.#db.transaction(() => {
        let renewed = 0;
        for (const { chunk_id, lease_gen } of leases)
          renewed += this.#renew.run({ chunk_id, lease_gen, until: untilMs }).changes;
        return renewed;
      })(),
    );
  }

  /** Sets sent bits of suspect chunks' lines before their send (the caller awaits this write). */
  markSent(lines: readonly LineKey[]): void {
    if (lines.length === 0) return;
    this.#withoutFsync(() =>
      this.#db.transaction(() => {
        const chunks = new Map<number, LoadedChunk | null>();
        for (const key of lines) {
          if (!chunks.has(key.chunk_id)) chunks.set(key.chunk_id, this.#rows.load(key.chunk_id));
          const chunk = chunks.get(key.chunk_id);
          if (chunk && isHeld(chunk, key)) setBit(chunk.sent, key.index);
        }
        for (const c of chunks.values())
          if (c)
            this.#rows.writeChunk({
              kind: 'maps',
              chunk_id: c.chunk_id,
              done: c.done,
              sent: c.sent,
            });
      })(),
    );
  }

  /**
   * Claims, renewals and sent marks commit without an fsync: in WAL mode they still survive a
   * crash of this process, and a power loss that drops one drops every later commit too (the
   * chunk is simply queued again, as if never claimed). Recorded answers keep synchronous=FULL.
   */
  #withoutFsync<T>(write: () => T): T {
    this.#syncNormal.run();
    try {
      return write();
    } finally {
      this.#syncFull.run();
    }
  }

  /** Outcomes whose lease is held and whose line is not done yet (first one per line wins). */
  applicable(outcomes: readonly ItemOutcome[]): ItemOutcome[] {
    const leases = new Map<number, LeaseView | null>();
    for (const o of outcomes) {
      if (leases.has(o.chunk_id)) continue;
      const row = this.#leaseOf.get(o.chunk_id) as
        { state: string; lease_gen: number; line_count: number; done: Buffer | null } | undefined;
      leases.set(o.chunk_id, row ? { ...row, done: bitmapOf(row.done, row.line_count) } : null);
    }
    return filterApplicable(outcomes, leases);
  }

  /**
   * One transaction for the whole group: this is the group commit of design.md §3. It commits
   * without the fsync; the caller makes the WAL durable off the event loop (see WalSync).
   */
  record(
    outcomes: readonly ItemOutcome[],
    spools: ReadonlyMap<string, SpoolLengths>,
    _nowMs: number,
  ): void {
    this.#withoutFsync(() =>
      this.#db.transaction(() => {
        const chunks = new Map<number, LoadedChunk>();
        for (const o of outcomes) {
          if (o.kind === 'release' || chunks.has(o.chunk_id)) continue;
          const chunk = this.#rows.load(o.chunk_id);
          if (chunk) chunks.set(o.chunk_id, chunk);
        }
        const plan = planGroup(outcomes, chunks);
        this.#rows.insertSplits(plan.splits);
        for (const w of plan.writes) this.#rows.writeChunk(w);
        for (const r of plan.releases) this.#release.run(r);
        this.#rows.writeDeltas(plan.deltas);
        for (const [id, lengths] of spools) this.#spools.run({ id, ...lengths });
      })(),
    );
  }
}

function isHeld(chunk: LoadedChunk, key: ChunkLease): boolean {
  return chunk.state === 'leased' && chunk.lease_gen === key.lease_gen;
}
