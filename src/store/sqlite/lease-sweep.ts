import type { Database, Statement } from 'better-sqlite3';
import type { LeaseSweep } from '../store.ts';
import { loadChunk, type BatchDelta, type ChunkRow } from '../chunk-plan.ts';
import { planTakeBack, type SweepOptions, type TakeBackWrite } from '../sweep-plan.ts';
import type { ChunkStatements } from './chunk-rows.ts';

/** Executes lease sweeps (see `planTakeBack` for what a sweep does to each chunk). */
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
        const plan = planTakeBack(chunk, nowMs, opts, deltas);
        this.#rows.insertSplits(plan.splits);
        this.#write(plan.write);
        result.poisoned += plan.poisoned;
      }
      this.#rows.writeDeltas(deltas);
      return result;
    })();
  }

  #write(w: TakeBackWrite): void {
    const { kind: _kind, ...params } = w;
    if (w.kind === 'single') this.#single.run(params);
    else if (w.kind === 'requeue-unsent') this.#requeueUnsent.run(params);
    else this.#finish.run(params);
  }
}
