import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { emptyUsage, type BatchRecord, type ItemOutcome } from '../../src/domain/records.ts';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import type { Store } from '../../src/store/store.ts';
import { removeDir, tempDir, withDb } from './harness/chaos-env.ts';
import { createRandom } from './harness/prng.ts';

/**
 * A worker that freezes (A8 #3) at the store level. A spawned server cannot be frozen past its
 * lease in a fast test: compose.ts fixes the lease at OPENBATCH_REQUEST_TIMEOUT_MS + 60 s with no
 * setting of its own, so the process-level variant (SIGSTOP for 65 s) lives in
 * freeze.full.test.ts. Here a frozen worker's lease runs out, another claim takes the items over
 * (lease_gen + 1), and the frozen worker's late outcomes, of every kind, must apply to nothing.
 */

const LEASE_MS = 1_000;
const ITEMS = 60;

function batchRecord(id: string, nowMs: number): BatchRecord {
  return {
    id,
    project: 'p',
    endpoint: '/v1/chat/completions',
    input_file_id: 'file-x',
    completion_window: '24h',
    status: 'validating',
    model: null,
    errors: null,
    output_file_id: null,
    error_file_id: null,
    created_at_ms: nowMs,
    in_progress_at_ms: null,
    expires_at_ms: nowMs + 86_400_000,
    finalizing_at_ms: null,
    completed_at_ms: null,
    failed_at_ms: null,
    expired_at_ms: null,
    cancelling_at_ms: null,
    cancelled_at_ms: null,
    total: 0,
    completed: 0,
    failed: 0,
    usage: emptyUsage(),
    metadata: null,
    output_expires_after_seconds: null,
  };
}

/** Every kind of outcome a worker can hand in for a claimed item, tagged with who sent it. */
function outcomeFor(
  kind: ItemOutcome['kind'],
  item: { item_id: number; lease_gen: number },
  who: string,
): ItemOutcome {
  const key = { item_id: item.item_id, lease_gen: item.lease_gen };
  switch (kind) {
    case 'response':
      return {
        kind,
        ...key,
        succeeded: true,
        status_code: 200,
        request_id: `req_${who}`,
        response_body: JSON.stringify({ who }),
        usage: null,
      };
    case 'error':
      return { kind, ...key, code: 'upstream_error', message: who };
    case 'retry':
      return { kind, ...key, not_before_ms: 0, refund_attempt: false, last_error: who };
    case 'stop':
      return { kind, ...key, state: 'cancelled' };
    case 'release':
      return { kind, ...key, refund_attempt: true };
    case 'sent':
      return { kind, ...key };
  }
}

describe('frozen worker: fencing by lease_gen (store level)', () => {
  const dirs: string[] = [];
  const stores: Store[] = [];
  afterAll(async () => {
    for (const s of stores) await s.close();
    for (const d of dirs) removeDir(d);
  });

  it('applies no outcome of a lease that ran out and was claimed again, in any order', async () => {
    const rng = createRandom('freeze-fencing');
    const dir = tempDir('freeze');
    dirs.push(dir);
    const store = createSqliteStore(join(dir, 'openbatch.db'));
    stores.push(store);
    let now = 1_000_000;
    const batchId = 'batch_freeze';
    await store.insertBatch(batchRecord(batchId, now));
    await store.insertItems(
      batchId,
      '/v1/chat/completions',
      now + 86_400_000,
      Array.from({ length: ITEMS }, (_, i) => ({
        line_no: i + 1,
        custom_id: `c-${i}`,
        upstream: 'default',
        model: 'm',
        body: '{}',
      })),
    );
    expect(await store.markInProgress(batchId, ITEMS, 'm', now)).toBe(true);
    expect(await store.queuePendingItems(batchId, ITEMS)).toBe(ITEMS);

    // The worker that will freeze claims a random share of the queue.
    const frozen = await store.claimItems('default', rng.int(10, ITEMS), LEASE_MS, now);
    // …and sends them (their sent marks reach the store) before it freezes mid-call.
    await store.recordOutcomes(
      frozen.map((f) => outcomeFor('sent', f, 'frozen')),
      now,
    );
    // It stops (SIGSTOP); its lease runs out; the lease sweep requeues the items.
    now += LEASE_MS + rng.int(1, 5_000);
    const released = await store.releaseLeases(now, {
      all: false,
      poisonAfter: 99,
      suspectDelayMs: 0,
    });
    expect(released, rng.tag).toBe(frozen.length);
    // The live worker claims everything, including the frozen worker's items (lease_gen + 1).
    const live = await store.claimItems('default', ITEMS, LEASE_MS, now);
    expect(live.length, rng.tag).toBe(ITEMS);
    const liveGen = new Map(live.map((i) => [i.item_id, i.lease_gen]));
    for (const f of frozen) expect(liveGen.get(f.item_id), rng.tag).toBe(f.lease_gen + 1);

    const kinds: ItemOutcome['kind'][] = ['response', 'error', 'retry', 'stop', 'release', 'sent'];
    const lateOutcomes = frozen.map((f) => outcomeFor(rng.pick(kinds), f, 'frozen'));
    const liveOutcomes = live.map((l) => outcomeFor('response', l, 'live'));
    // The frozen worker wakes (SIGCONT) before, during or after the live worker records.
    const split = rng.int(0, liveOutcomes.length);
    const half = Math.floor(lateOutcomes.length / 2);
    let staleApplied = await store.recordOutcomes(lateOutcomes.slice(0, half), now);
    const liveApplied =
      (await store.recordOutcomes(liveOutcomes.slice(0, split), now)) +
      (await store.recordOutcomes(
        [...liveOutcomes.slice(split), ...lateOutcomes.slice(half)],
        now,
      ));
    // A second lease sweep long after must not touch the recorded items either.
    staleApplied += await store.releaseLeases(now + 10 * LEASE_MS, {
      all: true,
      poisonAfter: 1,
      suspectDelayMs: 0,
    });
    staleApplied += await store.recordOutcomes(lateOutcomes, now);
    const why = `${rng.tag} frozen=${frozen.length} split=${split}`;
    expect(liveApplied, why).toBe(ITEMS);
    expect(staleApplied, why).toBe(0);

    // Exactly one finished line per custom_id, each the live worker's answer, counted once.
    const finished: { custom_id: string; state: string; request_id: string | null }[] = [];
    for await (const item of store.finishedItems(batchId, 7)) finished.push(item);
    expect(finished.map((f) => f.custom_id).sort(), why).toEqual(
      Array.from({ length: ITEMS }, (_, i) => `c-${i}`).sort(),
    );
    expect(new Set(finished.map((f) => `${f.state}/${String(f.request_id)}`)), why).toEqual(
      new Set(['succeeded/req_live']),
    );
    const batch = await store.getBatchById(batchId);
    expect([batch?.completed, batch?.failed], why).toEqual([ITEMS, 0]);
    const losses = withDb(dir, (db) =>
      db.prepare(`SELECT SUM(lease_losses) AS n FROM items`).get(),
    ) as { n: number };
    expect(losses.n, why).toBe(frozen.length);
  });
});
