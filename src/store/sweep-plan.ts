import { hasBit, setBit } from '../lib/bitmap.ts';
import {
  deltaFor,
  splitLine,
  type BatchDelta,
  type LoadedChunk,
  type SplitLine,
} from './chunk-plan.ts';

export interface SweepOptions {
  all: boolean;
  poisonAfter: number;
  suspectDelayMs: number;
}

/** What taking back one chunk writes. */
export type TakeBackWrite =
  /** Unsent lines stay, their attempt refunded; the chunk becomes a suspect. */
  | { kind: 'requeue-unsent'; chunk_id: number; done: Uint8Array }
  /** Nothing is left to run in the chunk itself (every lost line moved out). */
  | { kind: 'finish'; chunk_id: number; done: Uint8Array }
  /** A one-line chunk whose request was out: one more lost lease, or poison. */
  | {
      kind: 'single';
      chunk_id: number;
      state: 'queued' | 'failed';
      lease_losses: number;
      not_before_ms: number;
      last_error: string | null;
    };

export interface TakeBackPlan {
  write: TakeBackWrite;
  splits: SplitLine[];
  poisoned: number;
}

const poisonMessage = (losses: number): string =>
  `This request was abandoned: every attempt to process it was interrupted (${losses} times).`;

/**
 * Takes back a chunk whose lease ran out (every leased chunk at start-up). A line whose request
 * was out (its sent bit set) may be what killed the worker: it moves into a chunk of its own
 * that counts its lost leases, waits suspectDelayMs × losses, and fails as poison at
 * `poisonAfter`. Lines never sent stay in the chunk with their attempt refunded; the chunk
 * becomes a suspect, so its next sends are marked before they go out. Poisoned lines are counted
 * failed in `deltas`.
 */
export function planTakeBack(
  chunk: LoadedChunk,
  nowMs: number,
  opts: SweepOptions,
  deltas: Map<string, BatchDelta>,
): TakeBackPlan {
  const lines = chunk.offsets.length;
  const lostSent: number[] = [];
  let unsent = 0;
  for (let i = 0; i < lines; i++) {
    if (hasBit(chunk.done, i)) continue;
    if (hasBit(chunk.sent, i)) lostSent.push(i);
    else unsent++;
  }
  if (lines === 1 && lostSent.length === 1) return loseSingle(chunk, nowMs, opts, deltas);
  const plan: TakeBackPlan = {
    write: { kind: 'finish', chunk_id: 0, done: chunk.done },
    splits: [],
    poisoned: 0,
  };
  for (const i of lostSent) {
    const poison = opts.poisonAfter <= 1;
    plan.splits.push(
      splitLine(chunk, i, {
        state: poison ? 'failed' : 'queued',
        not_before_ms: nowMs + opts.suspectDelayMs,
        attempts: chunk.attempts,
        lease_losses: 1,
        last_error: poison ? poisonMessage(1) : null,
      }),
    );
    if (poison) {
      deltaFor(deltas, chunk.batch_id).failed++;
      plan.poisoned++;
    }
    setBit(chunk.done, i);
  }
  const kind = unsent > 0 ? 'requeue-unsent' : 'finish';
  plan.write = { kind, chunk_id: chunk.chunk_id, done: chunk.done };
  return plan;
}

function loseSingle(
  chunk: LoadedChunk,
  nowMs: number,
  opts: SweepOptions,
  deltas: Map<string, BatchDelta>,
): TakeBackPlan {
  const losses = chunk.lease_losses + 1;
  const poison = losses >= opts.poisonAfter;
  if (poison) deltaFor(deltas, chunk.batch_id).failed++;
  return {
    write: {
      kind: 'single',
      chunk_id: chunk.chunk_id,
      state: poison ? 'failed' : 'queued',
      lease_losses: losses,
      not_before_ms: nowMs + opts.suspectDelayMs * losses,
      last_error: poison ? poisonMessage(losses) : chunk.last_error,
    },
    splits: [],
    poisoned: poison ? 1 : 0,
  };
}
