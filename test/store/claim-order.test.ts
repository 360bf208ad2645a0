import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import {
  emptyUsage,
  type BatchRecord,
  type ClaimedChunk,
  type ItemOutcome,
} from '../../src/domain/records.ts';
import { hasBit } from '../../src/lib/bitmap.ts';
import { createPostgresStore } from '../../src/store/postgres/postgres-store.ts';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import type { Store } from '../../src/store/store.ts';
import { createDatabase } from '../helpers/postgres-server.ts';

function batch(id: string, expiresAtMs: number): BatchRecord {
  return {
    id,
    project: 'p',
    endpoint: '/v1/chat/completions',
    input_file_id: `file-${id}`,
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

/** A batch whose lines are 10 bytes each, cut into chunks of `perChunk` lines. */
async function addBatch(
  store: Store,
  id: string,
  expiresAtMs: number,
  lines: number,
  perChunk = lines,
): Promise<void> {
  await store.insertBatch(batch(id, expiresAtMs));
  const chunks = [];
  for (let first = 0; first < lines; first += perChunk) {
    const count = Math.min(perChunk, lines - first);
    chunks.push({
      upstream: 'u',
      first_line: first + 1,
      byte_start: first * 10,
      byte_end: (first + count) * 10 - 1,
      offsets: Array.from({ length: count }, (_, i) => i * 10),
    });
  }
  await store.insertChunks(id, expiresAtMs, chunks);
}

/** validating → in_progress with every chunk claimable, as ingest leaves a batch. */
async function start(store: Store, batchId: string): Promise<void> {
  await store.markInProgress(batchId, 0, 'm', 0);
  while ((await store.queuePendingItems(batchId, 100)) > 0);
}

const claim = (store: Store, nowMs: number, maxLines = 1_000, leaseMs = 60_000) =>
  store.claimChunks('u', { maxLines, maxBytes: 1 << 20 }, leaseMs, nowMs);

/** First line numbers of claimed chunks, as `batch:line`. */
const firstLines = (chunks: ClaimedChunk[]) =>
  chunks.map((c) => `${c.batch_id}:${c.byte_start / 10 + 1}`);

const line = (c: ClaimedChunk, index: number) => ({
  chunk_id: c.chunk_id,
  lease_gen: c.lease_gen,
  index,
});

function answered(c: ClaimedChunk, index: number): ItemOutcome {
  return {
    kind: 'response',
    ...line(c, index),
    succeeded: true,
    usage: null,
    record: { batch_id: c.batch_id, file: 'output', text: 'x\n' },
  };
}

/** The recorder's protocol: only applicable outcomes reach the commit. */
async function record(store: Store, outcomes: ItemOutcome[]): Promise<number> {
  const applicable = await store.applicableOutcomes(outcomes);
  await store.recordOutcomes(applicable, new Map(), 0);
  return applicable.length;
}

const sweep = (store: Store, nowMs: number, all: boolean, poisonAfter = 3, suspectDelayMs = 0) =>
  store.releaseLeases(nowMs, { all, poisonAfter, suspectDelayMs });

/** The store contract runs against every store: the embedded SQLite and a real PostgreSQL. */
const STORES: [name: string, open: (dir: string) => Promise<Store>][] = [
  ['sqlite', async (dir) => createSqliteStore(join(dir, 'db.sqlite'))],
  ['postgres', async () => createPostgresStore(await createDatabase(inject('postgresUrl')))],
];

describe.each(STORES)('chunk queue on %s', (_name, open) => {
  let dir: string;
  let store: Store;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'openbatch-store-'));
    store = await open(dir);
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('never hands out lines of a batch that is still validating or not yet released', async () => {
    await addBatch(store, 'b1', 1000, 6, 2);
    expect(await claim(store, 0)).toEqual([]);
    await store.markInProgress('b1', 6, 'm', 0);
    expect(await claim(store, 0)).toEqual([]);
    expect(await store.hasUnfinishedItems('b1')).toBe(true);
    expect(await store.queuePendingItems('b1', 2)).toBe(2);
    expect(await store.hasPendingItems('b1')).toBe(true);
    expect(firstLines(await claim(store, 0))).toEqual(['b1:1', 'b1:3']);
    expect(await store.queuePendingItems('b1', 2)).toBe(1);
    expect(await store.queuePendingItems('b1', 2)).toBe(0);
    expect(await store.hasPendingItems('b1')).toBe(false);
    expect(firstLines(await claim(store, 0))).toEqual(['b1:5']);
  });

  it('serves the earliest deadline first, and round-robins chunks among equal deadlines', async () => {
    await addBatch(store, 'late', 9_000, 4, 2);
    await addBatch(store, 'early-a', 5_000, 4, 2);
    await addBatch(store, 'early-b', 5_000, 4, 2);
    for (const id of ['late', 'early-a', 'early-b']) await start(store, id);
    expect(firstLines(await claim(store, 0))).toEqual([
      'early-a:1',
      'early-b:1',
      'early-a:3',
      'early-b:3',
      'late:1',
      'late:3',
    ]);
  });

  it('claims about maxLines lines and maxBytes bytes, and always at least one chunk', async () => {
    await addBatch(store, 'b', 1000, 40, 10);
    await start(store, 'b');
    expect(firstLines(await claim(store, 0, 15))).toEqual(['b:1', 'b:11']);
    expect(firstLines(await claim(store, 0, 1))).toEqual(['b:21']);
    const bytesBound = await store.claimChunks('u', { maxLines: 1000, maxBytes: 50 }, 1000, 0);
    expect(firstLines(bytesBound)).toEqual(['b:31']);
  });

  it('fences outcomes: an outcome from a lost lease changes nothing, and each line counts once', async () => {
    await addBatch(store, 'b', 1000, 2);
    await start(store, 'b');
    const [first] = await claim(store, 0, 10, 100);
    expect((await sweep(store, 200, false)).revoked).toHaveLength(1);
    const [second] = await claim(store, 300);
    expect(second!.lease_gen).toBe(first!.lease_gen + 1);
    expect(await record(store, [answered(first!, 0)])).toBe(0);
    expect(await record(store, [answered(second!, 0), answered(second!, 0)])).toBe(1);
    expect(await record(store, [answered(second!, 0)])).toBe(0);
    expect((await store.getBatchById('b'))!.completed).toBe(1);
    // A stale outcome that slips past the filter fails the whole commit instead of counting twice.
    await expect(store.recordOutcomes([answered(second!, 0)], new Map(), 0)).rejects.toThrow(
      /no longer applies/,
    );
    expect(await record(store, [answered(second!, 1)])).toBe(1);
    expect(await store.hasUnfinishedItems('b')).toBe(false);
  });

  it('moves a line that must be retried into a chunk of its own, due later', async () => {
    await addBatch(store, 'b', 1000, 3);
    await start(store, 'b');
    const [chunk] = await claim(store, 0);
    const retry: ItemOutcome = {
      kind: 'retry',
      ...line(chunk!, 1),
      not_before_ms: 500,
      refund_attempt: false,
      last_error: '503',
    };
    await record(store, [answered(chunk!, 0), retry, answered(chunk!, 2)]);
    expect(await claim(store, 499)).toEqual([]);
    const [alone] = await claim(store, 500);
    expect(alone).toMatchObject({ byte_start: 10, byte_end: 20, attempts: 2 });
    expect([...alone!.offsets]).toEqual([0]);
  });

  it('requeues a released chunk with its attempt refunded and its finished lines kept', async () => {
    await addBatch(store, 'b', 1000, 3);
    await start(store, 'b');
    const [chunk] = await claim(store, 0);
    await record(store, [
      answered(chunk!, 0),
      { kind: 'release', ...line(chunk!, 0), refund_attempt: true },
    ]);
    const [again] = await claim(store, 10);
    expect(again!.attempts).toBe(1);
    expect(hasBit(again!.done, 0)).toBe(true);
    expect(hasBit(again!.done, 1)).toBe(false);
  });

  it('fails a line as poison after it loses its lease poisonAfter times while sent', async () => {
    await addBatch(store, 'b', 1000, 3);
    await start(store, 'b');
    const [chunk] = await claim(store, 0, 10, 10);
    // Line 1 was out when the worker died; lines 0 and 2 were only claimed.
    await record(store, [{ kind: 'sent', ...line(chunk!, 1) }]);
    await sweep(store, 50, false);
    for (let round = 1; round < 3; round++) {
      const claimed = await claim(store, round * 100, 10, 10);
      const alone = claimed.find((c) => c.offsets.length === 1)!;
      expect(alone.byte_start).toBe(10);
      await record(store, [{ kind: 'sent', ...line(alone, 0) }]);
      await sweep(store, round * 100 + 50, false);
      // The rest of the chunk was never sent: it is not charged.
      for (const c of claimed.filter((x) => x !== alone))
        await record(store, [{ kind: 'release', ...line(c, 0), refund_attempt: true }]);
    }
    const left = await claim(store, 1_000);
    expect(left.every((c) => c.offsets.length === 3)).toBe(true);
    expect((await store.getBatchById('b'))!.failed).toBe(1);
    const unrun = await store.unrunChunks('b', 0, 10);
    expect(unrun).toMatchObject([{ state: 'failed', byte_start: 10 }]);
    expect(unrun[0]!.last_error).toMatch(/interrupted \(3 times\)/);
  });

  it('charges neither a lost lease nor an attempt to lines that were claimed but never sent', async () => {
    await addBatch(store, 'b', 1000, 2);
    await start(store, 'b');
    for (let round = 0; round < 5; round++) {
      expect(await claim(store, round * 100, 10, 10)).toHaveLength(1);
      await sweep(store, round * 100 + 50, true);
    }
    const [chunk] = await claim(store, 1000);
    expect(chunk).toMatchObject({ attempts: 1, suspect: true });
    expect((await store.getBatchById('b'))!.failed).toBe(0);
  });

  it('holds back a line that was in flight at a crash, and only such a line', async () => {
    await addBatch(store, 'b', 1000, 2);
    await start(store, 'b');
    const [chunk] = await claim(store, 0);
    await record(store, [{ kind: 'sent', ...line(chunk!, 0) }]);
    await store.releaseLeases(100, { all: true, poisonAfter: 3, suspectDelayMs: 5_000 });
    // The line that was only claimed runs at once; the one that was out waits 5 s (× its losses).
    const now = await claim(store, 100);
    expect(now.map((c) => [c.byte_start, hasBit(c.done, 0), hasBit(c.done, 1)])).toEqual([
      [0, true, false],
    ]);
    expect(await claim(store, 5_099)).toEqual([]);
    expect((await claim(store, 5_100)).map((c) => [c.byte_start, c.offsets.length])).toEqual([
      [0, 1],
    ]);
  });

  it('marks a suspect chunk, and quarantines a line that crashes the worker before its mark', async () => {
    await addBatch(store, 'b', 1000, 1);
    await start(store, 'b');
    const [first] = await claim(store, 0);
    expect(first!.suspect).toBe(false);
    // Crash before the group commit carried its sent mark: no loss, no attempt, but a suspect.
    await sweep(store, 10, true, 2);
    const [second] = await claim(store, 20);
    expect(second).toMatchObject({ attempts: 1, suspect: true });
    await store.markSent([line(second!, 0)]);
    await sweep(store, 30, true, 2);
    const [third] = await claim(store, 40);
    await store.markSent([line(third!, 0)]);
    // Two crashes with its request out: quarantined.
    await sweep(store, 50, true, 2);
    expect((await store.getBatchById('b'))!.failed).toBe(1);
    expect(await store.hasUnfinishedItems('b')).toBe(false);
  });

  it('renews only leases still held', async () => {
    await addBatch(store, 'b', 1000, 2, 1);
    await start(store, 'b');
    const [a, b] = await claim(store, 0, 10, 100);
    await sweep(store, 150, false);
    const [a2] = await claim(store, 200, 1, 100);
    expect(await store.renewLeases([line(a!, 0), line(a2!, 0), line(b!, 0)], 10_000)).toBe(1);
    expect((await sweep(store, 1_000, false)).revoked).toEqual([]);
  });

  it('never claims a chunk of a batch that is no longer running, even one requeued by a sweep', async () => {
    await addBatch(store, 'b', 1000, 2, 1);
    await start(store, 'b');
    const [leased] = await claim(store, 0, 1);
    await store.requestCancel('p', 'b', 10);
    // A crash: start-up takes the lease back and requeues the chunk before the cancel stops it.
    await sweep(store, 20, true);
    expect(await claim(store, 30)).toEqual([]);
    expect(leased).toBeDefined();
  });

  it('stops unstarted chunks on cancel and lists them for the error file', async () => {
    await addBatch(store, 'b', 1000, 4, 2);
    await start(store, 'b');
    const [leased] = await claim(store, 0, 1);
    expect(await store.stopUnstartedItems('b', 'cancelled')).toBe(1);
    expect(await claim(store, 0)).toEqual([]);
    expect(await store.hasUnfinishedItems('b')).toBe(true);
    await record(store, [answered(leased!, 0), answered(leased!, 1)]);
    expect(await store.hasUnfinishedItems('b')).toBe(false);
    expect(await store.unrunChunks('b', 0, 10)).toMatchObject([
      { state: 'cancelled', byte_start: 20 },
    ]);
  });
});
