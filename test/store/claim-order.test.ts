import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { emptyUsage, type BatchRecord } from '../../src/domain/records.ts';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import type { Store } from '../../src/store/store.ts';

function batch(id: string, expiresAtMs: number): BatchRecord {
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
    created_at_ms: 0,
    in_progress_at_ms: null,
    expires_at_ms: expiresAtMs,
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

async function addBatch(
  store: Store,
  id: string,
  expiresAtMs: number,
  lines: number,
): Promise<void> {
  await store.insertBatch(batch(id, expiresAtMs));
  const items = Array.from({ length: lines }, (_, i) => ({
    line_no: i + 1,
    custom_id: `${id}-${i + 1}`,
    upstream: 'u',
    model: 'm',
    body: '{}',
  }));
  await store.insertItems(id, '/v1/chat/completions', expiresAtMs, items);
}

/** validating → in_progress with every item claimable, as ingest leaves a batch. */
async function start(store: Store, batchId: string, total: number): Promise<void> {
  await store.markInProgress(batchId, total, 'm', 0);
  await store.queuePendingItems(batchId, total);
}

describe('claim order across batches', () => {
  let dir: string;
  let store: Store;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'openbatch-store-'));
    store = createSqliteStore(join(dir, 'db.sqlite'));
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('never hands out items of a batch that is still validating', async () => {
    await addBatch(store, 'b1', 1000, 3);
    expect(await store.claimItems('u', 10, 60_000, 0)).toEqual([]);
    await store.markInProgress('b1', 3, 'm', 0);
    // Started, but its items are released in chunks the engine paces: none is claimable yet.
    expect(await store.claimItems('u', 10, 60_000, 0)).toEqual([]);
    expect(await store.hasUnfinishedItems('b1')).toBe(true);
    expect(await store.queuePendingItems('b1', 2)).toBe(2);
    expect(await store.hasPendingItems('b1')).toBe(true);
    expect((await store.claimItems('u', 10, 60_000, 0)).map((i) => i.custom_id)).toEqual([
      'b1-1',
      'b1-2',
    ]);
    expect(await store.queuePendingItems('b1', 2)).toBe(1);
    expect(await store.queuePendingItems('b1', 2)).toBe(0);
    expect(await store.hasPendingItems('b1')).toBe(false);
    expect((await store.claimItems('u', 10, 60_000, 0)).map((i) => i.custom_id)).toEqual(['b1-3']);
  });

  it('serves the earliest deadline first, and round-robins among equal deadlines', async () => {
    await addBatch(store, 'late', 9_000, 2);
    await addBatch(store, 'early-a', 5_000, 3);
    await addBatch(store, 'early-b', 5_000, 3);
    for (const id of ['late', 'early-a', 'early-b']) await start(store, id, 3);
    const claimed = await store.claimItems('u', 8, 60_000, 0);
    expect(claimed.map((i) => i.custom_id)).toEqual([
      'early-a-1',
      'early-b-1',
      'early-a-2',
      'early-b-2',
      'early-a-3',
      'early-b-3',
      'late-1',
      'late-2',
    ]);
  });

  it('fences results: an outcome from a lost lease changes nothing', async () => {
    await addBatch(store, 'b', 1000, 1);
    await start(store, 'b', 1);
    const [first] = await store.claimItems('u', 1, 100, 0);
    expect(await store.releaseLeases(200, { all: false, poisonAfter: 5, suspectDelayMs: 0 })).toBe(
      1,
    );
    const [second] = await store.claimItems('u', 1, 100, 300);
    expect(second!.lease_gen).toBe(first!.lease_gen + 1);
    const stale = {
      kind: 'response' as const,
      item_id: first!.item_id,
      lease_gen: first!.lease_gen,
      succeeded: true,
      status_code: 200,
      request_id: 'r',
      response_body: '{}',
      usage: null,
    };
    expect(await store.recordOutcomes([stale], 400)).toBe(0);
    expect(await store.recordOutcomes([{ ...stale, lease_gen: second!.lease_gen }], 400)).toBe(1);
    expect((await store.getBatchById('b'))!.completed).toBe(1);
  });

  it('fails a line as poison after it loses its lease poisonAfter times', async () => {
    await addBatch(store, 'b', 1000, 1);
    await start(store, 'b', 1);
    for (let round = 0; round < 3; round++) {
      const claimed = await store.claimItems('u', 1, 10, round * 100);
      expect(claimed).toHaveLength(1);
      const [item] = claimed;
      await store.recordOutcomes(
        [{ kind: 'sent', item_id: item!.item_id, lease_gen: item!.lease_gen }],
        0,
      );
      await store.releaseLeases(round * 100 + 50, {
        all: false,
        poisonAfter: 3,
        suspectDelayMs: 0,
      });
    }
    expect(await store.claimItems('u', 1, 10, 1000)).toEqual([]);
    const items = [];
    for await (const item of store.finishedItems('b', 10)) items.push(item);
    expect(items).toMatchObject([{ state: 'failed', error_code: 'internal_error' }]);
    expect((await store.getBatchById('b'))!.failed).toBe(1);
  });

  it('charges neither a lost lease nor an attempt to a line that was claimed but never sent', async () => {
    await addBatch(store, 'b', 1000, 1);
    await start(store, 'b', 1);
    for (let round = 0; round < 5; round++) {
      expect(await store.claimItems('u', 1, 10, round * 100)).toHaveLength(1);
      await store.releaseLeases(round * 100 + 50, { all: true, poisonAfter: 3, suspectDelayMs: 0 });
    }
    const [item] = await store.claimItems('u', 1, 10, 1000);
    // Five leases came and went unsent: this claim is its first attempt, and it is still queued work.
    expect(item).toMatchObject({ custom_id: expect.any(String), attempts: 1 });
    expect((await store.getBatchById('b'))!.failed).toBe(0);
  });

  it('holds back a line that was in flight at a crash, and only such a line', async () => {
    await addBatch(store, 'b', 1000, 2);
    await start(store, 'b', 2);
    const [sent, unsent] = await store.claimItems('u', 2, 60_000, 0);
    await store.recordOutcomes(
      [{ kind: 'sent', item_id: sent!.item_id, lease_gen: sent!.lease_gen }],
      0,
    );
    await store.releaseLeases(100, { all: true, poisonAfter: 3, suspectDelayMs: 5_000 });
    // The line that was only claimed runs at once; the suspect waits 5 s (× its lost leases).
    expect((await store.claimItems('u', 2, 60_000, 100)).map((i) => i.item_id)).toEqual([
      unsent!.item_id,
    ]);
    expect(await store.claimItems('u', 2, 60_000, 5_099)).toEqual([]);
    expect((await store.claimItems('u', 2, 60_000, 5_100)).map((i) => i.item_id)).toEqual([
      sent!.item_id,
    ]);
  });

  it('makes a line leased at a crash without a sent mark a suspect, marked before its next send', async () => {
    await addBatch(store, 'b', 1000, 1);
    await start(store, 'b', 1);
    const [first] = await store.claimItems('u', 1, 60_000, 0);
    expect(first!.suspect).toBe(0);
    // Crash before the group commit carried its sent mark: no loss, no attempt, but a suspect.
    await store.releaseLeases(10, { all: true, poisonAfter: 2, suspectDelayMs: 0 });
    const [second] = await store.claimItems('u', 1, 60_000, 20);
    expect(second).toMatchObject({ attempts: 1, suspect: 1 });
    await store.markSent([second!]);
    await store.releaseLeases(30, { all: true, poisonAfter: 2, suspectDelayMs: 0 });
    const [third] = await store.claimItems('u', 1, 60_000, 40);
    await store.markSent([third!]);
    // Two crashes with its request out: quarantined.
    await store.releaseLeases(50, { all: true, poisonAfter: 2, suspectDelayMs: 0 });
    expect((await store.getBatchById('b'))!.failed).toBe(1);
  });
});
