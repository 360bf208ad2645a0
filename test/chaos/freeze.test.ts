import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  emptyUsage,
  type BatchRecord,
  type ClaimedChunk,
  type ItemOutcome,
  type LineKey,
} from '../../src/domain/records.ts';
import { createSqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import type { NewChunk, Store } from '../../src/store/store.ts';
import {
  chunkLines,
  customIdAt,
  leaseLosses,
  undoneLineCounts,
  withDb,
} from '../helpers/store-peek.ts';
import { removeDir, tempDir } from './harness/chaos-env.ts';
import { createRandom, type ChaosRandom } from './harness/prng.ts';

/**
 * A worker that freezes (A8 #3) at the store level. A spawned server cannot be frozen past its
 * lease in a fast test: compose.ts fixes the lease at OPENBATCH_REQUEST_TIMEOUT_MS + 60 s with no
 * setting of its own, so the process-level variant (SIGSTOP for 65 s) lives in
 * freeze.full.test.ts. Here a frozen worker's lease runs out, another claim takes its chunks
 * over (lease_gen + 1; a line whose request was out moves into a chunk of its own), and the
 * frozen worker's late outcomes, of every kind, must apply to nothing: each line is recorded
 * once, by the live worker.
 */

const LEASE_MS = 1_000;
const LINES = 60;
const INPUT_FILE = 'file-x';

function batchRecord(id: string, nowMs: number): BatchRecord {
  return {
    id,
    project: 'p',
    endpoint: '/v1/chat/completions',
    input_file_id: INPUT_FILE,
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

/**
 * The input file and its chunks as ingest would store them: runs of 1–8 consecutive lines (the
 * first ones fixed so one-line and multi-line chunks are both among the frozen worker's claim).
 */
function inputOf(rng: ChaosRandom): { input: Buffer; chunks: NewChunk[] } {
  const texts = Array.from(
    { length: LINES },
    (_, i) =>
      JSON.stringify({
        custom_id: `c-${i}`,
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: 'm', messages: [{ role: 'user', content: `line ${i}` }] },
      }) + '\n',
  );
  const starts: number[] = [];
  let at = 0;
  for (const t of texts) {
    starts.push(at);
    at += Buffer.byteLength(t);
  }
  const sizes = [1, 3, 1, 5];
  const chunks: NewChunk[] = [];
  for (let line = 0; line < LINES;) {
    const n = Math.min(sizes[chunks.length] ?? rng.int(1, 8), LINES - line);
    const byteStart = starts[line] as number;
    chunks.push({
      upstream: 'default',
      first_line: line + 1,
      byte_start: byteStart,
      byte_end: starts[line + n] ?? at,
      offsets: starts.slice(line, line + n).map((s) => s - byteStart),
    });
    line += n;
  }
  return { input: Buffer.from(texts.join('')), chunks };
}

/** The claimed chunks' lines not done yet, in claim order. */
function openLines(claimed: readonly ClaimedChunk[]): LineKey[] {
  const lines: LineKey[] = [];
  for (const c of claimed) {
    for (let index = 0; index < c.offsets.length; index++) {
      if (((c.done[index >> 3] ?? 0) & (1 << (index & 7))) === 0)
        lines.push({ chunk_id: c.chunk_id, lease_gen: c.lease_gen, index });
    }
  }
  return lines;
}

/** Every kind of outcome a worker can hand in for a claimed line, tagged with who sent it. */
function outcomeFor(
  kind: ItemOutcome['kind'],
  key: LineKey,
  customId: string,
  batchId: string,
  who: string,
): ItemOutcome {
  const lineKey = { chunk_id: key.chunk_id, lease_gen: key.lease_gen, index: key.index };
  const text = (extra: object) => JSON.stringify({ custom_id: customId, who, ...extra }) + '\n';
  switch (kind) {
    case 'response':
      return {
        kind,
        ...lineKey,
        succeeded: true,
        usage: null,
        record: { batch_id: batchId, file: 'output', text: text({ status_code: 200 }) },
      };
    case 'error':
      return {
        kind,
        ...lineKey,
        record: { batch_id: batchId, file: 'error', text: text({ code: 'upstream_error' }) },
      };
    case 'retry':
      return { kind, ...lineKey, not_before_ms: 0, refund_attempt: false, last_error: who };
    case 'stop':
      return {
        kind,
        ...lineKey,
        state: 'cancelled',
        record: { batch_id: batchId, file: 'error', text: text({ code: 'batch_cancelled' }) },
      };
    case 'release':
      return { kind, chunk_id: key.chunk_id, lease_gen: key.lease_gen, refund_attempt: true };
    case 'sent':
      return { kind, ...lineKey };
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
    const { input, chunks } = inputOf(rng);
    // The input blob where a server keeps it, so the store peeks can read the lines.
    mkdirSync(join(dir, 'blobs'));
    writeFileSync(join(dir, 'blobs', INPUT_FILE), input);
    const store = createSqliteStore(join(dir, 'openbatch.db'));
    stores.push(store);
    let now = 1_000_000;
    const batchId = 'batch_freeze';
    await store.insertBatch(batchRecord(batchId, now));
    await store.insertChunks(batchId, now + 86_400_000, chunks);
    expect(await store.markInProgress(batchId, LINES, 'm', now)).toBe(true);
    expect(await store.queuePendingItems(batchId, chunks.length)).toBe(chunks.length);

    // What the result recorder does with a group: keep the outcomes that still apply, append
    // their lines to the spools, commit both. Returns the outcomes that applied.
    const spools = { output: [] as string[], error: [] as string[] };
    const bytesOf = (lines: string[]) => Buffer.byteLength(lines.join(''));
    const record = async (group: readonly ItemOutcome[]): Promise<ItemOutcome[]> => {
      const applicable = await store.applicableOutcomes(group);
      for (const o of applicable) if ('record' in o) spools[o.record.file].push(o.record.text);
      const lengths = { output_bytes: bytesOf(spools.output), error_bytes: bytesOf(spools.error) };
      await store.recordOutcomes(applicable, new Map([[batchId, lengths]]), now);
      return applicable;
    };
    const customIdOf = new Map<string, string>();
    const learn = (claimed: readonly ClaimedChunk[]) => {
      for (const c of claimed)
        for (let i = 0; i < c.offsets.length; i++)
          customIdOf.set(`${c.chunk_id}:${i}`, customIdAt(input, c, i));
    };
    const idOf = (key: LineKey) => customIdOf.get(`${key.chunk_id}:${key.index}`) as string;

    // The worker that will freeze claims a random share of the queue…
    const frozen = await store.claimChunks(
      'default',
      { maxLines: rng.int(10, LINES), maxBytes: 1 << 30 },
      LEASE_MS,
      now,
    );
    learn(frozen);
    const frozenLines = openLines(frozen);
    // …sends the first of its lines (their sent marks reach the store with the next group
    // commit), keeps the rest claimed ahead, and freezes mid-call (SIGSTOP).
    const sentCount = rng.int(1, frozenLines.length - 1);
    const sent = frozenLines.slice(0, sentCount);
    expect(
      (await record(sent.map((k) => outcomeFor('sent', k, idOf(k), batchId, 'frozen')))).length,
      rng.tag,
    ).toBe(sentCount);
    const sentKeys = new Set(sent.map((k) => `${k.chunk_id}:${k.index}`));
    const why0 = `${rng.tag} frozen chunks=${frozen.map((c) => c.offsets.length).join('+')} sent=${sentCount}`;

    // Its lease runs out; the lease sweep takes its chunks back (nothing is poison yet).
    now += LEASE_MS + rng.int(1, 5_000);
    const sweep = await store.releaseLeases(now, {
      all: false,
      poisonAfter: 99,
      suspectDelayMs: 0,
    });
    expect(sweep.poisoned, why0).toBe(0);
    expect(sweep.revoked.map((l) => `${l.chunk_id}/${l.lease_gen}`).sort(), why0).toEqual(
      frozen.map((c) => `${c.chunk_id}/${c.lease_gen}`).sort(),
    );
    // Every line is unfinished in exactly one queued chunk again.
    expect(undoneLineCounts(dir, batchId), why0).toEqual({ queued: LINES });
    const undone = chunkLines(dir, batchId).filter((l) => !l.done);
    expect(undone.map((l) => l.custom_id).sort(), why0).toEqual(
      Array.from({ length: LINES }, (_, i) => `c-${i}`).sort(),
    );

    // The live worker claims everything, the frozen worker's lines included (a claim sizes
    // itself by line_count, which still counts the lines that moved out of a chunk: ask for more).
    const live = await store.claimChunks(
      'default',
      { maxLines: 4 * LINES, maxBytes: 1 << 30 },
      LEASE_MS,
      now,
    );
    learn(live);
    const liveLines = openLines(live);
    expect(liveLines.map(idOf).sort(), why0).toEqual(
      Array.from({ length: LINES }, (_, i) => `c-${i}`).sort(),
    );
    // A frozen chunk is taken over with lease_gen + 1, holding the lines it still had; a line
    // that was out went with it only if it was the chunk's one line, else into a chunk of its own.
    const liveById = new Map(live.map((c) => [c.chunk_id, c]));
    for (const f of frozen) {
      const lines = f.offsets.length;
      const kept = Array.from({ length: lines }, (_, i) => i).filter(
        (i) => lines === 1 || !sentKeys.has(`${f.chunk_id}:${i}`),
      );
      const taken = liveById.get(f.chunk_id);
      const why = `${why0} chunk ${f.chunk_id} (${lines} lines, kept ${kept.join(',')})`;
      if (kept.length === 0) {
        expect(taken, why).toBeUndefined();
        continue;
      }
      expect(taken?.lease_gen, why).toBe(f.lease_gen + 1);
      expect(
        openLines(taken ? [taken] : []).map((k) => k.index),
        why,
      ).toEqual(kept);
    }

    const kinds: ItemOutcome['kind'][] = ['response', 'error', 'retry', 'stop', 'release', 'sent'];
    const lateOutcomes = frozenLines.map((k) =>
      outcomeFor(rng.pick(kinds), k, idOf(k), batchId, 'frozen'),
    );
    const liveOutcomes = liveLines.map((k) => outcomeFor('response', k, idOf(k), batchId, 'live'));
    const late = new Set<ItemOutcome>(lateOutcomes);
    const countLate = (applied: ItemOutcome[]) => applied.filter((o) => late.has(o)).length;
    // The frozen worker wakes (SIGCONT) before, during or after the live worker records.
    const split = rng.int(0, liveOutcomes.length);
    const half = Math.floor(lateOutcomes.length / 2);
    let staleApplied = countLate(await record(lateOutcomes.slice(0, half)));
    const first = await record(liveOutcomes.slice(0, split));
    const second = await record([...liveOutcomes.slice(split), ...lateOutcomes.slice(half)]);
    staleApplied += countLate(second);
    const liveApplied = first.length + second.length - countLate(second);
    // A second lease sweep long after must not touch the recorded lines either.
    const sweep2 = await store.releaseLeases(now + 10 * LEASE_MS, {
      all: true,
      poisonAfter: 1,
      suspectDelayMs: 0,
    });
    staleApplied += countLate(await record(lateOutcomes));
    const why = `${why0} split=${split} late kinds=${lateOutcomes.map((o) => o.kind[0]).join('')}`;
    expect(liveApplied, why).toBe(LINES);
    expect(staleApplied, why).toBe(0);
    expect(sweep2, why).toEqual({ revoked: [], poisoned: 0 });

    // Even handed straight to recordOutcomes (the recorder never does: it filters first), a late
    // outcome is refused or fenced: the store does not change.
    const snapshot = () =>
      withDb(dir, (db) => ({
        chunks: db.prepare(`SELECT * FROM chunks ORDER BY chunk_id`).all(),
        batch: db.prepare(`SELECT * FROM batches WHERE id = ?`).get(batchId),
      }));
    const before = snapshot();
    const refused: string[] = [];
    for (const o of lateOutcomes) {
      await store.recordOutcomes([o], new Map(), now).catch(() => refused.push(o.kind));
    }
    expect(snapshot(), `${why} refused=${refused.join(',')}`).toEqual(before);

    // Exactly one recorded line per custom_id, each the live worker's answer, counted once.
    const output = spools.output.map((t) => JSON.parse(t) as { custom_id: string; who: string });
    expect(output.map((l) => l.custom_id).sort(), why).toEqual(
      Array.from({ length: LINES }, (_, i) => `c-${i}`).sort(),
    );
    expect(new Set(output.map((l) => l.who)), why).toEqual(new Set(['live']));
    expect(spools.error, why).toEqual([]);
    const batch = await store.getBatchById(batchId);
    expect([batch?.completed, batch?.failed], why).toEqual([LINES, 0]);
    expect(await store.spoolLengths(batchId), why).toEqual({
      output_bytes: bytesOf(spools.output),
      error_bytes: 0,
    });
    expect(undoneLineCounts(dir, batchId), why).toEqual({});
    expect(await store.hasUnfinishedItems(batchId), why).toBe(false);
    // One lost lease per line whose request was out when the worker froze.
    expect(leaseLosses(dir, batchId), why).toBe(sentCount);
  });
});
