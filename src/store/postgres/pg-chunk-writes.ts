import type { ItemOutcome } from '../../domain/records.ts';
import type { BatchDelta, ChunkWrite, SplitLine } from '../chunk-plan.ts';
import { SINGLE_LINE_OFFSETS } from '../chunk-plan.ts';
import type { TakeBackWrite } from '../sweep-plan.ts';
import type { SpoolLengths } from '../store.ts';
import { bytea, type Queryable } from './pg-pool.ts';

/**
 * The writes of a group commit or a lease sweep, each kind as one multi-row statement over
 * unnest()ed arrays: a group of hundreds of outcomes costs a handful of round trips, not one per
 * line or per chunk.
 */

export async function insertSplits(tx: Queryable, splits: readonly SplitLine[]): Promise<void> {
  if (splits.length === 0) return;
  const col = <K extends keyof SplitLine>(k: K) => splits.map((s) => s[k]);
  await tx.query(
    `INSERT INTO chunks (batch_id, upstream, deadline_ms, first_line, line_count, byte_start,
       byte_end, offsets, state, not_before_ms, attempts, lease_losses, last_error)
     SELECT batch_id, upstream, deadline_ms, first_line, 1, byte_start, byte_end, $13, state,
       not_before_ms, attempts, lease_losses, last_error
     FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[],
       $7::text[], $8::bigint[], $9::int[], $10::int[], $11::text[], $12::int[])
       AS v(batch_id, upstream, deadline_ms, first_line, byte_start, byte_end, state,
         not_before_ms, attempts, lease_losses, last_error, ord)
     ORDER BY ord`,
    [
      col('batch_id'),
      col('upstream'),
      col('deadline_ms'),
      col('first_line'),
      col('byte_start'),
      col('byte_end'),
      col('state'),
      col('not_before_ms'),
      col('attempts'),
      col('lease_losses'),
      col('last_error'),
      splits.map((_, i) => i),
      bytea(SINGLE_LINE_OFFSETS),
    ],
  );
}

/** Every chunk a group commit touched, in one UPDATE (finished, maps written, or requeued). */
export async function writeChunks(tx: Queryable, writes: readonly ChunkWrite[]): Promise<void> {
  if (writes.length === 0) return;
  await tx.query(
    `UPDATE chunks c SET
       state = CASE v.kind WHEN 'finish' THEN 'done' WHEN 'requeue' THEN 'queued' ELSE c.state END,
       done = v.done,
       sent = CASE WHEN v.kind = 'maps' THEN v.sent ELSE NULL END,
       lease_expires_ms = CASE WHEN v.kind = 'maps' THEN c.lease_expires_ms ELSE NULL END,
       not_before_ms = CASE WHEN v.kind = 'requeue' THEN v.not_before_ms ELSE c.not_before_ms END,
       attempts = c.attempts - v.refund,
       last_error = CASE WHEN v.kind = 'requeue' THEN v.last_error ELSE c.last_error END
     FROM unnest($1::bigint[], $2::text[], $3::bytea[], $4::bytea[], $5::bigint[], $6::int[],
       $7::text[]) AS v(chunk_id, kind, done, sent, not_before_ms, refund, last_error)
     WHERE c.chunk_id = v.chunk_id`,
    [
      writes.map((w) => w.chunk_id),
      writes.map((w) => w.kind),
      writes.map((w) => bytea(w.done)),
      writes.map((w) => (w.kind === 'maps' ? bytea(w.sent) : null)),
      writes.map((w) => (w.kind === 'requeue' ? w.not_before_ms : 0)),
      writes.map((w) => (w.kind === 'requeue' ? w.refund : 0)),
      writes.map((w) => (w.kind === 'requeue' ? w.last_error : null)),
    ],
  );
}

/** Chunks handed back whole (shutdown), fenced by their lease. */
export async function releaseChunks(
  tx: Queryable,
  releases: readonly { chunk_id: number; lease_gen: number; refund: number }[],
): Promise<void> {
  if (releases.length === 0) return;
  await tx.query(
    `UPDATE chunks c SET state = 'queued', lease_expires_ms = NULL, sent = NULL,
       attempts = c.attempts - v.refund
     FROM unnest($1::bigint[], $2::int[], $3::int[]) AS v(chunk_id, lease_gen, refund)
     WHERE c.chunk_id = v.chunk_id AND c.lease_gen = v.lease_gen AND c.state = 'leased'`,
    [
      releases.map((r) => r.chunk_id),
      releases.map((r) => r.lease_gen),
      releases.map((r) => r.refund),
    ],
  );
}

/** Chunks a lease sweep took back. */
export async function writeTakeBacks(
  tx: Queryable,
  writes: readonly TakeBackWrite[],
): Promise<void> {
  if (writes.length === 0) return;
  const single = (w: TakeBackWrite) => (w.kind === 'single' ? w : null);
  await tx.query(
    `UPDATE chunks c SET
       state = CASE v.kind WHEN 'single' THEN v.state WHEN 'finish' THEN 'done' ELSE 'queued' END,
       lease_expires_ms = NULL, sent = NULL,
       done = CASE WHEN v.kind = 'single' THEN c.done ELSE v.done END,
       attempts = c.attempts - CASE WHEN v.kind = 'requeue-unsent' THEN 1 ELSE 0 END,
       unmarked_losses = c.unmarked_losses + CASE WHEN v.kind = 'requeue-unsent' THEN 1 ELSE 0 END,
       lease_losses = CASE WHEN v.kind = 'single' THEN v.lease_losses ELSE c.lease_losses END,
       not_before_ms = CASE WHEN v.kind = 'single' THEN v.not_before_ms ELSE c.not_before_ms END,
       last_error = CASE WHEN v.kind = 'single' THEN v.last_error ELSE c.last_error END
     FROM unnest($1::bigint[], $2::text[], $3::bytea[], $4::text[], $5::int[], $6::bigint[],
       $7::text[]) AS v(chunk_id, kind, done, state, lease_losses, not_before_ms, last_error)
     WHERE c.chunk_id = v.chunk_id`,
    [
      writes.map((w) => w.chunk_id),
      writes.map((w) => w.kind),
      writes.map((w) => (w.kind === 'single' ? null : bytea(w.done))),
      writes.map((w) => single(w)?.state ?? null),
      writes.map((w) => single(w)?.lease_losses ?? 0),
      writes.map((w) => single(w)?.not_before_ms ?? 0),
      writes.map((w) => single(w)?.last_error ?? null),
    ],
  );
}

/** Counter changes of every batch a group touched, in one UPDATE. */
export async function writeDeltas(
  tx: Queryable,
  deltas: ReadonlyMap<string, BatchDelta>,
): Promise<void> {
  if (deltas.size === 0) return;
  const all = [...deltas];
  const col = (f: (d: BatchDelta) => number) => all.map(([, d]) => f(d));
  await tx.query(
    `UPDATE batches b SET completed = b.completed + v.completed, failed = b.failed + v.failed,
       expired_lines = b.expired_lines + v.expired,
       input_tokens = b.input_tokens + v.input_tokens,
       cached_tokens = b.cached_tokens + v.cached_tokens,
       output_tokens = b.output_tokens + v.output_tokens,
       reasoning_tokens = b.reasoning_tokens + v.reasoning_tokens,
       total_tokens = b.total_tokens + v.total_tokens,
       cost_charged_nano = b.cost_charged_nano + v.charged_nano,
       cost_standard_nano = b.cost_standard_nano + v.standard_nano,
       cache_hits = b.cache_hits + v.cache_hits
     FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[],
       $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[])
       AS v(id, completed, failed, expired, input_tokens, cached_tokens, output_tokens,
         reasoning_tokens, total_tokens, charged_nano, standard_nano, cache_hits)
     WHERE b.id = v.id`,
    [
      all.map(([id]) => id),
      col((d) => d.completed),
      col((d) => d.failed),
      col((d) => d.expired),
      col((d) => d.usage.input_tokens),
      col((d) => d.usage.cached_tokens),
      col((d) => d.usage.output_tokens),
      col((d) => d.usage.reasoning_tokens),
      col((d) => d.usage.total_tokens),
      col((d) => d.charged_nano),
      col((d) => d.standard_nano),
      col((d) => d.cache_hits),
    ],
  );
}

/** The spools' new committed lengths. */
export async function writeSpoolLengths(
  tx: Queryable,
  spools: ReadonlyMap<string, SpoolLengths>,
): Promise<void> {
  if (spools.size === 0) return;
  const all = [...spools];
  await tx.query(
    `UPDATE batches b SET output_bytes = v.output_bytes, error_bytes = v.error_bytes
     FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS v(id, output_bytes, error_bytes)
     WHERE b.id = v.id`,
    [all.map(([id]) => id), all.map(([, l]) => l.output_bytes), all.map(([, l]) => l.error_bytes)],
  );
}

/**
 * The group's answer lines, one row per batch and file, in the group commit's transaction. Each
 * row goes at its batch's committed length, which moves past it: the UPDATE locks the batch row,
 * so commits touching one batch take their positions in commit order, with no gaps.
 */
export async function insertAnswers(
  tx: Queryable,
  outcomes: readonly ItemOutcome[],
): Promise<void> {
  const texts = new Map<string, { output: string[]; error: string[] }>();
  for (const o of outcomes) {
    if (!('record' in o)) continue;
    let t = texts.get(o.record.batch_id);
    if (!t) texts.set(o.record.batch_id, (t = { output: [], error: [] }));
    t[o.record.file].push(o.record.text);
  }
  if (texts.size === 0) return;
  const groups = [...texts].map(([batchId, t]) => ({
    batchId,
    output: Buffer.from(t.output.join('')),
    error: Buffer.from(t.error.join('')),
  }));
  const { rows } = await tx.query<{ id: string; output_bytes: number; error_bytes: number }>(
    `UPDATE batches b SET output_bytes = b.output_bytes + v.output_len,
       error_bytes = b.error_bytes + v.error_len
     FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS v(id, output_len, error_len)
     WHERE b.id = v.id
     RETURNING b.id, b.output_bytes, b.error_bytes`,
    [
      groups.map((g) => g.batchId),
      groups.map((g) => g.output.length),
      groups.map((g) => g.error.length),
    ],
  );
  const ends = new Map(rows.map((r) => [r.id, r]));
  const inserts: { batch_id: string; file: string; byte_start: number; data: Buffer }[] = [];
  for (const g of groups) {
    const end = ends.get(g.batchId);
    if (!end) continue; // the batch is gone (deleted): nothing to keep
    if (g.output.length > 0)
      inserts.push({
        batch_id: g.batchId,
        file: 'output',
        byte_start: end.output_bytes - g.output.length,
        data: g.output,
      });
    if (g.error.length > 0)
      inserts.push({
        batch_id: g.batchId,
        file: 'error',
        byte_start: end.error_bytes - g.error.length,
        data: g.error,
      });
  }
  if (inserts.length === 0) return;
  await tx.query(
    `INSERT INTO answers (batch_id, file, byte_start, data)
     SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bytea[])`,
    [
      inserts.map((r) => r.batch_id),
      inserts.map((r) => r.file),
      inserts.map((r) => r.byte_start),
      inserts.map((r) => r.data),
    ],
  );
}
