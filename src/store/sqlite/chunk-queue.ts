import type { Database, Statement } from 'better-sqlite3';
import { unpackOffsets } from '../../domain/chunk-lines.ts';
import type { ChunkLease, ClaimedChunk, ItemOutcome, LineKey } from '../../domain/records.ts';
import { addUsage } from '../../protocol/token-usage.ts';
import { bitmapOf, countBits, hasBit, setBit } from '../../lib/bitmap.ts';
import type { SpoolLengths } from '../store.ts';
import type { ChunkStatements } from './chunk-rows.ts';
import { deltaFor, type BatchDelta, type LoadedChunk } from './chunk-rows.ts';

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

type LineOutcome = Exclude<ItemOutcome, { kind: 'release' }>;
type Requeue = { not_before_ms: number; refund: number; last_error: string };

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
  readonly #writeMaps: Statement;
  readonly #finish: Statement;
  readonly #requeue: Statement;
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
    this.#writeMaps = db.prepare(
      `UPDATE chunks SET done = @done, sent = @sent WHERE chunk_id = @chunk_id`,
    );
    this.#finish = db.prepare(`
      UPDATE chunks SET state = 'done', done = @done, sent = NULL, lease_expires_ms = NULL
      WHERE chunk_id = @chunk_id`);
    this.#requeue = db.prepare(`
      UPDATE chunks SET state = 'queued', not_before_ms = @not_before_ms, lease_expires_ms = NULL,
        attempts = attempts - @refund, last_error = @last_error, done = @done, sent = NULL
      WHERE chunk_id = @chunk_id`);
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
        const chunks = new Map<number, LoadedChunk>();
        for (const key of lines) {
          const chunk = this.#held(chunks, key);
          if (chunk) setBit(chunk.sent, key.index);
        }
        for (const c of chunks.values())
          this.#writeMaps.run({ chunk_id: c.chunk_id, done: c.done, sent: c.sent });
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
    const leases = new Map<number, { state: string; lease_gen: number; done: Uint8Array } | null>();
    const decided = new Set<string>();
    return outcomes.filter((o) => {
      let lease = leases.get(o.chunk_id);
      if (lease === undefined) {
        const row = this.#leaseOf.get(o.chunk_id) as
          { state: string; lease_gen: number; line_count: number; done: Buffer | null } | undefined;
        lease = row ? { ...row, done: bitmapOf(row.done, row.line_count) } : null;
        leases.set(o.chunk_id, lease);
      }
      if (!lease || lease.state !== 'leased' || lease.lease_gen !== o.lease_gen) return false;
      if (o.kind === 'release') return true;
      if (hasBit(lease.done, o.index)) return false;
      if (o.kind === 'sent') return true;
      const key = `${o.chunk_id}:${o.index}`;
      if (decided.has(key)) return false;
      decided.add(key);
      return true;
    });
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
    this.#withoutFsync(() => this.#recordGroup(outcomes, spools));
  }

  #recordGroup(outcomes: readonly ItemOutcome[], spools: ReadonlyMap<string, SpoolLengths>): void {
    this.#db.transaction(() => {
      const chunks = new Map<number, LoadedChunk>();
      const requeues = new Map<number, Requeue>();
      const deltas = new Map<string, BatchDelta>();
      for (const o of outcomes) {
        if (o.kind !== 'release') this.#applyLine(o, chunks, requeues, deltas);
      }
      for (const c of chunks.values()) this.#writeChunk(c, requeues.get(c.chunk_id));
      for (const o of outcomes) {
        if (o.kind === 'release' && !this.#allDone(chunks.get(o.chunk_id)))
          this.#release.run({ ...leaseOf(o), refund: o.refund_attempt ? 1 : 0 });
      }
      this.#rows.writeDeltas(deltas);
      for (const [id, lengths] of spools) this.#spools.run({ id, ...lengths });
    })();
  }

  #applyLine(
    o: LineOutcome,
    chunks: Map<number, LoadedChunk>,
    requeues: Map<number, Requeue>,
    deltas: Map<string, BatchDelta>,
  ): void {
    const chunk = this.#held(chunks, o);
    if (!chunk) throw new StaleOutcomeError(o);
    if (o.kind === 'sent') {
      setBit(chunk.sent, o.index); // moot, and harmless, once the line is done
      return;
    }
    // The recorder wrote spool lines for these outcomes: one that no longer applies must undo
    // the whole group (the recorder filters again and retries).
    if (hasBit(chunk.done, o.index)) throw new StaleOutcomeError(o);
    if (o.kind === 'retry') {
      const refund = o.refund_attempt ? 1 : 0;
      if (chunk.offsets.length === 1) {
        requeues.set(chunk.chunk_id, {
          not_before_ms: o.not_before_ms,
          refund,
          last_error: o.last_error,
        });
        return;
      }
      this.#rows.splitLine(chunk, o.index, {
        state: 'queued',
        not_before_ms: o.not_before_ms,
        attempts: chunk.attempts - refund,
        lease_losses: 0,
        last_error: o.last_error,
      });
    }
    setBit(chunk.done, o.index);
    const delta = deltaFor(deltas, chunk.batch_id);
    if (o.kind === 'response') {
      if (o.succeeded) delta.completed++;
      else delta.failed++;
      if (o.usage) addUsage(delta.usage, o.usage);
    } else if (o.kind === 'error') delta.failed++;
    else if (o.kind === 'stop' && o.state === 'expired') delta.expired++;
  }

  #writeChunk(c: LoadedChunk, requeue: Requeue | undefined): void {
    if (requeue) this.#requeue.run({ chunk_id: c.chunk_id, done: c.done, ...requeue });
    else if (this.#allDone(c)) this.#finish.run({ chunk_id: c.chunk_id, done: c.done });
    else this.#writeMaps.run({ chunk_id: c.chunk_id, done: c.done, sent: c.sent });
  }

  #allDone(c: LoadedChunk | undefined): boolean {
    return c !== undefined && countBits(c.done, c.offsets.length) === c.offsets.length;
  }

  /** The chunk of `key`, loaded once per transaction, or null when its lease is not held. */
  #held(chunks: Map<number, LoadedChunk>, key: ChunkLease): LoadedChunk | null {
    let chunk = chunks.get(key.chunk_id);
    if (!chunk) {
      const loaded = this.#rows.load(key.chunk_id);
      if (!loaded) return null;
      chunk = loaded;
      chunks.set(key.chunk_id, chunk);
    }
    return chunk.state === 'leased' && chunk.lease_gen === key.lease_gen ? chunk : null;
  }
}

function leaseOf(key: ChunkLease): ChunkLease {
  return { chunk_id: key.chunk_id, lease_gen: key.lease_gen };
}

/** An outcome reached the commit although its lease was lost or its line already recorded. */
export class StaleOutcomeError extends Error {
  constructor(o: LineKey & { kind: string }) {
    super(`outcome ${o.kind} for chunk ${o.chunk_id} line ${o.index} no longer applies`);
    this.name = 'StaleOutcomeError';
  }
}
