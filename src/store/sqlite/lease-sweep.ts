import type { Database, Statement } from 'better-sqlite3';
import { hasBit, setBit } from '../../lib/bitmap.ts';
import type { LeaseSweep } from '../store.ts';
import type { ChunkStatements } from './chunk-rows.ts';
import {
  deltaFor,
  loadChunk,
  type BatchDelta,
  type ChunkRow,
  type LoadedChunk,
} from './chunk-rows.ts';

export interface SweepOptions {
  all: boolean;
  poisonAfter: number;
  suspectDelayMs: number;
}

const poisonMessage = (losses: number): string =>
  `This request was abandoned: every attempt to process it was interrupted (${losses} times).`;

/**
 * Takes back chunks whose lease ran out (every leased chunk at start-up). A line whose request
 * was out (its sent bit set) may be what killed the worker: it moves into a chunk of its own
 * that counts its lost leases, waits suspectDelayMs × losses, and fails as poison at
 * `poisonAfter`. Lines never sent stay in the chunk with their attempt refunded; the chunk
 * becomes a suspect, so its next sends are marked before they go out.
 */
export class LeaseSweeper {
  readonly #db: Database;
  readonly #rows: ChunkStatements;
  readonly #expired: Statement;
  readonly #single: Statement;
  readonly #requeueUnsent: Statement;
  readonly #finish: Statement;

  constructor(db: Database, rows: ChunkStatements) {
    this.#db = db;
    this.#rows = rows;
    this.#expired = db.prepare(
      `SELECT * FROM chunks WHERE state = 'leased' AND lease_expires_ms <= ? ORDER BY chunk_id`,
    );
    this.#single = db.prepare(`
      UPDATE chunks SET state = @state, lease_expires_ms = NULL, sent = NULL,
        lease_losses = @lease_losses, not_before_ms = @not_before_ms, last_error = @last_error
      WHERE chunk_id = @chunk_id`);
    this.#requeueUnsent = db.prepare(`
      UPDATE chunks SET state = 'queued', lease_expires_ms = NULL, sent = NULL, done = @done,
        attempts = attempts - 1, unmarked_losses = unmarked_losses + 1
      WHERE chunk_id = @chunk_id`);
    this.#finish = db.prepare(`
      UPDATE chunks SET state = 'done', done = @done, sent = NULL, lease_expires_ms = NULL
      WHERE chunk_id = @chunk_id`);
  }

  sweep(nowMs: number, opts: SweepOptions): LeaseSweep {
    return this.#db.transaction(() => {
      const cutoff = opts.all ? Number.MAX_SAFE_INTEGER : nowMs;
      const result: LeaseSweep = { revoked: [], poisoned: 0 };
      const deltas = new Map<string, BatchDelta>();
      for (const row of this.#expired.all(cutoff) as ChunkRow[]) {
        const chunk = loadChunk(row);
        result.revoked.push({ chunk_id: chunk.chunk_id, lease_gen: chunk.lease_gen });
        result.poisoned += this.#takeBack(chunk, nowMs, opts, deltas);
      }
      this.#rows.writeDeltas(deltas);
      return result;
    })();
  }

  /** Returns how many lines were quarantined. */
  #takeBack(
    chunk: LoadedChunk,
    nowMs: number,
    opts: SweepOptions,
    deltas: Map<string, BatchDelta>,
  ): number {
    const lines = chunk.offsets.length;
    const lostSent: number[] = [];
    let unsent = 0;
    for (let i = 0; i < lines; i++) {
      if (hasBit(chunk.done, i)) continue;
      if (hasBit(chunk.sent, i)) lostSent.push(i);
      else unsent++;
    }
    if (lines === 1 && lostSent.length === 1) return this.#loseSingle(chunk, nowMs, opts, deltas);
    let poisoned = 0;
    for (const i of lostSent) {
      const poison = opts.poisonAfter <= 1;
      this.#rows.splitLine(chunk, i, {
        state: poison ? 'failed' : 'queued',
        not_before_ms: nowMs + opts.suspectDelayMs,
        attempts: chunk.attempts,
        lease_losses: 1,
        last_error: poison ? poisonMessage(1) : null,
      });
      if (poison) {
        deltaFor(deltas, chunk.batch_id).failed++;
        poisoned++;
      }
      setBit(chunk.done, i);
    }
    if (unsent > 0) this.#requeueUnsent.run({ chunk_id: chunk.chunk_id, done: chunk.done });
    else this.#finish.run({ chunk_id: chunk.chunk_id, done: chunk.done });
    return poisoned;
  }

  /** A one-line chunk whose request was out: one more lost lease, or poison. */
  #loseSingle(
    chunk: LoadedChunk,
    nowMs: number,
    opts: SweepOptions,
    deltas: Map<string, BatchDelta>,
  ): number {
    const losses = chunk.lease_losses + 1;
    const poison = losses >= opts.poisonAfter;
    this.#single.run({
      chunk_id: chunk.chunk_id,
      state: poison ? 'failed' : 'queued',
      lease_losses: losses,
      not_before_ms: nowMs + opts.suspectDelayMs * losses,
      last_error: poison ? poisonMessage(losses) : chunk.last_error,
    });
    if (!poison) return 0;
    deltaFor(deltas, chunk.batch_id).failed++;
    return 1;
  }
}
