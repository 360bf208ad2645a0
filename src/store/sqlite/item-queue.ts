import type { Database, Statement } from 'better-sqlite3';
import type { ClaimedItem, ItemOutcome } from '../../domain/records.ts';
import { addUsage } from '../../domain/usage.ts';
import { emptyUsage, type UsageTotals } from '../../domain/records.ts';

type ClaimedRow = ClaimedItem & { deadline_ms: number; line_no: number };

interface BatchDelta {
  completed: number;
  failed: number;
  usage: UsageTotals;
}

/**
 * The durable item queue on SQLite's single writer. A claim is one UPDATE … RETURNING over the
 * partial queue index; every result is fenced by `lease_gen`, so a late answer from a lease that
 * was lost (worker frozen, process restarted) changes nothing.
 */
export class SqliteItemQueue {
  readonly #db: Database;
  readonly #claim: Statement;
  readonly #markSent: Statement;
  readonly #syncNormal: Statement;
  readonly #syncFull: Statement;
  readonly #respond: Statement;
  readonly #fail: Statement;
  readonly #retry: Statement;
  readonly #release: Statement;
  readonly #stop: Statement;
  readonly #batchDelta: Statement;
  readonly #poisonLost: Statement;
  readonly #requeueLost: Statement;

  constructor(db: Database) {
    this.#db = db;
    // Parameters: upstream, now, limit, leaseUntil. Earliest deadline first; among batches with
    // the same deadline, line 1 of each, then line 2 of each… (round-robin by line number).
    this.#claim = db.prepare(`
      UPDATE items SET state = 'leased', attempts = attempts + 1, lease_gen = lease_gen + 1,
        lease_expires_ms = @leaseUntil
      WHERE item_id IN (
        SELECT item_id FROM items
        WHERE state = 'queued' AND upstream = @upstream AND not_before_ms <= @now
        ORDER BY deadline_ms, line_no, item_id LIMIT @limit)
      RETURNING item_id, batch_id, custom_id, endpoint, model, body, attempts, lease_gen,
        (lease_losses + unmarked_losses > 0) AS suspect, deadline_ms, line_no`);
    const fenced = `WHERE item_id = @item_id AND lease_gen = @lease_gen AND state = 'leased'`;
    this.#syncNormal = db.prepare(`PRAGMA synchronous = NORMAL`);
    this.#syncFull = db.prepare(`PRAGMA synchronous = FULL`);
    this.#markSent = db.prepare(`UPDATE items SET sent_gen = lease_gen ${fenced}`);
    this.#respond = db.prepare(`
      UPDATE items SET state = @state, status_code = @status_code, request_id = @request_id,
        response_body = @response_body, finished_at_ms = @now, lease_expires_ms = NULL
      ${fenced} RETURNING batch_id`);
    this.#fail = db.prepare(`
      UPDATE items SET state = 'failed', error_code = @code, error_message = @message,
        finished_at_ms = @now, lease_expires_ms = NULL
      ${fenced} RETURNING batch_id`);
    this.#retry = db.prepare(`
      UPDATE items SET state = 'queued', not_before_ms = @not_before_ms, lease_expires_ms = NULL,
        attempts = attempts - @refund, last_error = @last_error
      ${fenced}`);
    this.#release = db.prepare(`
      UPDATE items SET state = 'queued', lease_expires_ms = NULL, attempts = attempts - @refund
      ${fenced}`);
    this.#stop = db.prepare(`
      UPDATE items SET state = @state, finished_at_ms = @now, lease_expires_ms = NULL ${fenced}`);
    this.#batchDelta = db.prepare(`
      UPDATE batches SET completed = completed + @completed, failed = failed + @failed,
        input_tokens = input_tokens + @input_tokens, cached_tokens = cached_tokens + @cached_tokens,
        output_tokens = output_tokens + @output_tokens,
        reasoning_tokens = reasoning_tokens + @reasoning_tokens,
        total_tokens = total_tokens + @total_tokens
      WHERE id = @id`);
    // Lease sweep (every supervisor tick): poison first, then requeue the rest. A line whose
    // request was out waits suspectDelayMs × its losses before it runs again, so the lines that
    // start first after a restart are not the ones in flight at the crash.
    this.#poisonLost = db.prepare(
      `UPDATE items SET state = 'failed', error_code = 'internal_error', finished_at_ms = @now,
          error_message = 'This request was abandoned: every attempt to process it was interrupted (' || (lease_losses + 1) || ' times).',
          lease_expires_ms = NULL, lease_losses = lease_losses + 1
        WHERE state = 'leased' AND lease_expires_ms <= @cutoff AND sent_gen = lease_gen
          AND lease_losses + 1 >= @poisonAfter
        RETURNING batch_id`,
    );
    this.#requeueLost = db.prepare(
      `UPDATE items SET state = 'queued', lease_expires_ms = NULL,
          not_before_ms = CASE WHEN sent_gen = lease_gen
            THEN @now + @suspectDelayMs * (lease_losses + 1) ELSE not_before_ms END,
          lease_losses = lease_losses + (sent_gen = lease_gen),
          unmarked_losses = unmarked_losses + (sent_gen <> lease_gen),
          attempts = attempts - (sent_gen <> lease_gen)
        WHERE state = 'leased' AND lease_expires_ms <= @cutoff`,
    );
  }

  claim(upstream: string, limit: number, leaseMs: number, nowMs: number): ClaimedItem[] {
    const rows = this.#withoutFsync(
      () =>
        this.#claim.all({
          upstream,
          limit,
          now: nowMs,
          leaseUntil: nowMs + leaseMs,
        }) as ClaimedRow[],
    );
    // RETURNING yields rows in update (rowid) order; hand them out in claim order.
    rows.sort(
      (a, b) => a.deadline_ms - b.deadline_ms || a.line_no - b.line_no || a.item_id - b.item_id,
    );
    return rows.map(({ deadline_ms: _d, line_no: _l, ...item }) => item);
  }

  markSent(items: readonly { item_id: number; lease_gen: number }[]): void {
    if (items.length === 0) return;
    this.#withoutFsync(() =>
      this.#db.transaction(() => {
        for (const { item_id, lease_gen } of items) this.#markSent.run({ item_id, lease_gen });
      })(),
    );
  }

  /**
   * Claims and sent marks commit without an fsync: in WAL mode they still survive a crash of this
   * process, and a power loss that drops one drops every later commit too (the item is simply
   * queued again, as if never claimed). Recorded answers keep synchronous=FULL.
   */
  #withoutFsync<T>(write: () => T): T {
    this.#syncNormal.run();
    try {
      return write();
    } finally {
      this.#syncFull.run();
    }
  }

  /** One transaction for the whole group: this is the group commit of design.md §3. */
  record(outcomes: readonly ItemOutcome[], nowMs: number): number {
    return this.#db.transaction(() => {
      const deltas = new Map<string, BatchDelta>();
      // A sent mark is moot when the same group already carries the item's outcome.
      const decided = new Set<number>();
      for (const o of outcomes) if (o.kind !== 'sent') decided.add(o.item_id);
      let applied = 0;
      for (const outcome of outcomes) {
        if (outcome.kind === 'sent' && decided.has(outcome.item_id)) continue;
        if (this.#applyOne(outcome, nowMs, deltas)) applied++;
      }
      for (const [id, d] of deltas) {
        this.#batchDelta.run({ id, completed: d.completed, failed: d.failed, ...d.usage });
      }
      return applied;
    })();
  }

  #applyOne(o: ItemOutcome, nowMs: number, deltas: Map<string, BatchDelta>): boolean {
    const key = { item_id: o.item_id, lease_gen: o.lease_gen };
    switch (o.kind) {
      case 'response': {
        const row = this.#respond.get({
          ...key,
          now: nowMs,
          state: o.succeeded ? 'succeeded' : 'failed',
          status_code: o.status_code,
          request_id: o.request_id,
          response_body: o.response_body,
        }) as { batch_id: string } | undefined;
        if (!row) return false;
        const delta = deltaFor(deltas, row.batch_id);
        if (o.succeeded) delta.completed++;
        else delta.failed++;
        if (o.usage) addUsage(delta.usage, o.usage);
        return true;
      }
      case 'error': {
        const row = this.#fail.get({ ...key, now: nowMs, code: o.code, message: o.message }) as
          { batch_id: string } | undefined;
        if (row) deltaFor(deltas, row.batch_id).failed++;
        return row !== undefined;
      }
      case 'retry':
        return (
          this.#retry.run({
            ...key,
            not_before_ms: o.not_before_ms,
            refund: o.refund_attempt ? 1 : 0,
            last_error: o.last_error,
          }).changes === 1
        );
      case 'stop':
        return this.#stop.run({ ...key, state: o.state, now: nowMs }).changes === 1;
      case 'sent':
        return this.#markSent.run(key).changes === 1;
      case 'release':
        return this.#release.run({ ...key, refund: o.refund_attempt ? 1 : 0 }).changes === 1;
    }
  }

  /**
   * Requeues lost leases; poison items (too many leases lost while their request was out) fail
   * with an error line. A lease lost before its request was sent costs neither a loss nor an attempt.
   */
  releaseLeases(nowMs: number, all: boolean, poisonAfter: number, suspectDelayMs: number): number {
    return this.#db.transaction(() => {
      const cutoff = all ? Number.MAX_SAFE_INTEGER : nowMs;
      const poisoned = this.#poisonLost.all({ now: nowMs, cutoff, poisonAfter }) as {
        batch_id: string;
      }[];
      for (const { batch_id } of poisoned) {
        this.#batchDelta.run({ id: batch_id, completed: 0, failed: 1, ...emptyUsage() });
      }
      const released = this.#requeueLost.run({ now: nowMs, cutoff, suspectDelayMs }).changes;
      return released + poisoned.length;
    })();
  }
}

function deltaFor(deltas: Map<string, BatchDelta>, batchId: string): BatchDelta {
  let d = deltas.get(batchId);
  if (!d) {
    d = { completed: 0, failed: 0, usage: emptyUsage() };
    deltas.set(batchId, d);
  }
  return d;
}
