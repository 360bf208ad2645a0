import { lineRange, packOffsets, unpackOffsets } from '../domain/chunk-lines.ts';
import type {
  ChunkLease,
  ChunkState,
  ItemOutcome,
  LineKey,
  UsageTotals,
} from '../domain/records.ts';
import { emptyUsage } from '../domain/records.ts';
import { bitmapOf, countBits, hasBit, setBit } from '../lib/bitmap.ts';
import { addUsage } from '../protocol/token-usage.ts';

/**
 * The chunk queue's decisions, written once for every store: which outcomes apply, what a group
 * commit writes, what a lease sweep does to a chunk whose lease ran out. A store loads the rows,
 * asks for a plan and executes it in one transaction (SQLite row by row, PostgreSQL as multi-row
 * statements).
 */

/** A `chunks` row as a store returns it. */
export interface ChunkRow {
  chunk_id: number;
  batch_id: string;
  upstream: string;
  deadline_ms: number;
  first_line: number;
  line_count: number;
  byte_start: number;
  byte_end: number;
  offsets: Uint8Array;
  state: ChunkState;
  attempts: number;
  lease_gen: number;
  lease_losses: number;
  unmarked_losses: number;
  done: Uint8Array | null;
  sent: Uint8Array | null;
  last_error: string | null;
}

/** A chunk loaded for changes inside one transaction: its maps decoded and writable. */
export interface LoadedChunk extends Omit<ChunkRow, 'offsets' | 'done' | 'sent'> {
  offsets: Uint32Array;
  done: Uint8Array;
  sent: Uint8Array;
}

export function loadChunk(row: ChunkRow): LoadedChunk {
  return {
    ...row,
    offsets: unpackOffsets(row.offsets),
    done: bitmapOf(row.done, row.line_count),
    sent: bitmapOf(row.sent, row.line_count),
  };
}

/** The offsets of a chunk that holds one line. */
export const SINGLE_LINE_OFFSETS = packOffsets([0]);

/** Counter changes of one batch, summed over a transaction and written once. */
export interface BatchDelta {
  completed: number;
  failed: number;
  expired: number;
  usage: UsageTotals;
  /** Cost of the answers (nano-dollars) and how many came from the response cache. */
  charged_nano: number;
  standard_nano: number;
  cache_hits: number;
}

export function deltaFor(deltas: Map<string, BatchDelta>, batchId: string): BatchDelta {
  let d = deltas.get(batchId);
  if (!d) {
    d = {
      completed: 0,
      failed: 0,
      expired: 0,
      usage: emptyUsage(),
      charged_nano: 0,
      standard_nano: 0,
      cache_hits: 0,
    };
    deltas.set(batchId, d);
  }
  return d;
}

/** A line moved into a one-line chunk of its own (a retry, a suspect, a poison line). */
export interface SplitLine {
  batch_id: string;
  upstream: string;
  deadline_ms: number;
  first_line: number;
  byte_start: number;
  byte_end: number;
  state: 'queued' | 'failed';
  not_before_ms: number;
  attempts: number;
  lease_losses: number;
  last_error: string | null;
}

export function splitLine(
  chunk: LoadedChunk,
  index: number,
  line: Pick<SplitLine, 'state' | 'not_before_ms' | 'attempts' | 'lease_losses' | 'last_error'>,
): SplitLine {
  const [start, end] = lineRange(chunk, index);
  return {
    batch_id: chunk.batch_id,
    upstream: chunk.upstream,
    deadline_ms: chunk.deadline_ms,
    first_line: chunk.first_line + index,
    byte_start: start,
    byte_end: end,
    ...line,
  };
}

/** What a group commit writes to one chunk it touched. */
export type ChunkWrite =
  | { kind: 'finish'; chunk_id: number; done: Uint8Array }
  | { kind: 'maps'; chunk_id: number; done: Uint8Array; sent: Uint8Array }
  | {
      kind: 'requeue';
      chunk_id: number;
      done: Uint8Array;
      not_before_ms: number;
      refund: number;
      last_error: string;
    };

/** Everything one group commit writes. */
export interface GroupPlan {
  writes: ChunkWrite[];
  splits: SplitLine[];
  /** Chunks handed back whole (shutdown), fenced by their lease. */
  releases: (ChunkLease & { refund: number })[];
  deltas: Map<string, BatchDelta>;
}

/**
 * States whose lines take outcomes: a leased chunk (a dispatcher's calls), a native one (merged
 * results of sub-batches on the upstream's Batch API; engine/native). Fenced by lease_gen in both.
 */
const HOLDS_LINES: ReadonlySet<string> = new Set(['leased', 'native']);

/** The lease state `applicable` checks an outcome against. */
export interface LeaseView {
  state: string;
  lease_gen: number;
  done: Uint8Array;
}

/** Outcomes whose lease is held and whose line is not done yet (first one per line wins). */
export function filterApplicable(
  outcomes: readonly ItemOutcome[],
  leases: ReadonlyMap<number, LeaseView | null>,
): ItemOutcome[] {
  const decided = new Set<string>();
  return outcomes.filter((o) => {
    const lease = leases.get(o.chunk_id);
    if (!lease || !HOLDS_LINES.has(lease.state) || lease.lease_gen !== o.lease_gen) return false;
    if (o.kind === 'release') return true;
    if (hasBit(lease.done, o.index)) return false;
    if (o.kind === 'sent') return true;
    const key = `${o.chunk_id}:${o.index}`;
    if (decided.has(key)) return false;
    decided.add(key);
    return true;
  });
}

type LineOutcome = Exclude<ItemOutcome, { kind: 'release' }>;

/**
 * The writes of one group of applicable outcomes over `chunks` (every chunk they name, loaded in
 * this transaction). Throws StaleOutcomeError when one no longer applies: the answers were
 * already written to the spools, so the whole group must be refiltered and tried again.
 */
export function planGroup(
  outcomes: readonly ItemOutcome[],
  chunks: ReadonlyMap<number, LoadedChunk>,
): GroupPlan {
  const plan: GroupPlan = { writes: [], splits: [], releases: [], deltas: new Map() };
  const requeues = new Map<number, Extract<ChunkWrite, { kind: 'requeue' }>>();
  const touched = new Map<number, LoadedChunk>();
  for (const o of outcomes) {
    if (o.kind === 'release') continue;
    const chunk = held(chunks, o);
    if (!chunk) throw new StaleOutcomeError(o);
    touched.set(chunk.chunk_id, chunk);
    applyLine(o, chunk, plan, requeues);
  }
  for (const c of touched.values()) {
    const requeue = requeues.get(c.chunk_id);
    if (requeue) plan.writes.push({ ...requeue, done: c.done });
    else if (allDone(c)) plan.writes.push({ kind: 'finish', chunk_id: c.chunk_id, done: c.done });
    else plan.writes.push({ kind: 'maps', chunk_id: c.chunk_id, done: c.done, sent: c.sent });
  }
  for (const o of outcomes) {
    if (o.kind === 'release' && !(touched.has(o.chunk_id) && allDone(touched.get(o.chunk_id)!)))
      plan.releases.push({
        chunk_id: o.chunk_id,
        lease_gen: o.lease_gen,
        refund: o.refund_attempt ? 1 : 0,
      });
  }
  return plan;
}

function applyLine(
  o: LineOutcome,
  chunk: LoadedChunk,
  plan: GroupPlan,
  requeues: Map<number, Extract<ChunkWrite, { kind: 'requeue' }>>,
): void {
  if (o.kind === 'sent') {
    setBit(chunk.sent, o.index); // moot, and harmless, once the line is done
    return;
  }
  if (hasBit(chunk.done, o.index)) throw new StaleOutcomeError(o);
  if (o.kind === 'retry') {
    const refund = o.refund_attempt ? 1 : 0;
    if (chunk.offsets.length === 1) {
      requeues.set(chunk.chunk_id, {
        kind: 'requeue',
        chunk_id: chunk.chunk_id,
        done: chunk.done,
        not_before_ms: o.not_before_ms,
        refund,
        last_error: o.last_error,
      });
      return;
    }
    plan.splits.push(
      splitLine(chunk, o.index, {
        state: 'queued',
        not_before_ms: o.not_before_ms,
        attempts: chunk.attempts - refund,
        lease_losses: 0,
        last_error: o.last_error,
      }),
    );
  }
  setBit(chunk.done, o.index);
  const delta = deltaFor(plan.deltas, chunk.batch_id);
  if (o.kind === 'response') {
    if (o.succeeded) delta.completed++;
    else delta.failed++;
    if (o.usage) addUsage(delta.usage, o.usage);
    if (o.cost) {
      delta.charged_nano += o.cost.charged_nano;
      delta.standard_nano += o.cost.standard_nano;
    }
    if (o.cached) delta.cache_hits++;
  } else if (o.kind === 'error') delta.failed++;
  else if (o.kind === 'stop' && o.state === 'expired') delta.expired++;
}

function allDone(c: LoadedChunk): boolean {
  return countBits(c.done, c.offsets.length) === c.offsets.length;
}

/** The chunk of `key` when its lease is held. */
function held(chunks: ReadonlyMap<number, LoadedChunk>, key: ChunkLease): LoadedChunk | null {
  const chunk = chunks.get(key.chunk_id);
  return chunk && HOLDS_LINES.has(chunk.state) && chunk.lease_gen === key.lease_gen ? chunk : null;
}

/** An outcome reached the commit although its lease was lost or its line already recorded. */
export class StaleOutcomeError extends Error {
  constructor(o: LineKey & { kind: string }) {
    super(`outcome ${o.kind} for chunk ${o.chunk_id} line ${o.index} no longer applies`);
    this.name = 'StaleOutcomeError';
  }
}
