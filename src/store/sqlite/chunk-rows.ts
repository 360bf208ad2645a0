import type { Database, Statement } from 'better-sqlite3';
import type { BatchDelta, ChunkWrite, LoadedChunk, SplitLine } from '../chunk-plan.ts';
import { loadChunk, SINGLE_LINE_OFFSETS, type ChunkRow } from '../chunk-plan.ts';

/** The statements every chunk write shares, prepared once. */
export class ChunkStatements {
  readonly byId: Statement;
  readonly insertSingle: Statement;
  readonly batchDelta: Statement;
  readonly #writeMaps: Statement;
  readonly #finish: Statement;
  readonly #requeue: Statement;

  constructor(db: Database) {
    this.byId = db.prepare(`SELECT * FROM chunks WHERE chunk_id = ?`);
    this.insertSingle = db.prepare(`
      INSERT INTO chunks (batch_id, upstream, deadline_ms, first_line, line_count, byte_start,
        byte_end, offsets, state, not_before_ms, attempts, lease_losses, last_error)
      VALUES (@batch_id, @upstream, @deadline_ms, @first_line, 1, @byte_start, @byte_end,
        @offsets, @state, @not_before_ms, @attempts, @lease_losses, @last_error)`);
    this.batchDelta = db.prepare(`
      UPDATE batches SET completed = completed + @completed, failed = failed + @failed,
        expired_lines = expired_lines + @expired,
        input_tokens = input_tokens + @input_tokens, cached_tokens = cached_tokens + @cached_tokens,
        output_tokens = output_tokens + @output_tokens,
        reasoning_tokens = reasoning_tokens + @reasoning_tokens,
        total_tokens = total_tokens + @total_tokens,
        cost_charged_nano = cost_charged_nano + @charged_nano,
        cost_standard_nano = cost_standard_nano + @standard_nano,
        cache_hits = cache_hits + @cache_hits
      WHERE id = @id`);
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
  }

  load(chunkId: number): LoadedChunk | null {
    const row = this.byId.get(chunkId) as ChunkRow | undefined;
    return row ? loadChunk(row) : null;
  }

  /** Inserts the one-line chunks lines were moved into. */
  insertSplits(splits: readonly SplitLine[]): void {
    for (const s of splits) this.insertSingle.run({ ...s, offsets: SINGLE_LINE_OFFSETS });
  }

  writeChunk(w: ChunkWrite): void {
    const { kind: _kind, ...params } = w;
    if (w.kind === 'requeue') this.#requeue.run(params);
    else if (w.kind === 'finish') this.#finish.run(params);
    else this.#writeMaps.run(params);
  }

  writeDeltas(deltas: Map<string, BatchDelta>): void {
    for (const [id, d] of deltas) {
      this.batchDelta.run({
        id,
        completed: d.completed,
        failed: d.failed,
        expired: d.expired,
        ...d.usage,
        charged_nano: d.charged_nano,
        standard_nano: d.standard_nano,
        cache_hits: d.cache_hits,
      });
    }
  }
}
