import type { ChunkLease, ClaimedItem } from '../domain/records.ts';

/** How long a stopped batch is remembered (longer than any claim takes to read its chunk). */
const STOPPED_MEMORY_MS = 10 * 60_000;

type StopState = 'cancelled' | 'expired';

/** A chunk a dispatcher holds the lease of, and how many of its lines are still with it. */
interface HeldChunk {
  lease: ChunkLease;
  open: number;
}

/**
 * A dispatcher's claimed work: the lines claimed but not yet sent (in claim order), the chunks
 * whose leases it holds until every line of theirs has left its hands, and the batches that
 * were stopped so a chunk of theirs arriving late never sends.
 */
export class ClaimedLines {
  #lines: ClaimedItem[] = [];
  #bytes = 0;
  readonly #held = new Map<number, HeldChunk>();
  readonly #stopped = new Map<string, { state: StopState; atMs: number }>();

  get length(): number {
    return this.#lines.length;
  }

  /** Request bytes held by claimed, unsent lines. */
  get bytes(): number {
    return this.#bytes;
  }

  get heldLeases(): ChunkLease[] {
    return [...this.#held.values()].map((h) => h.lease);
  }

  at(index: number): ClaimedItem | undefined {
    return this.#lines[index];
  }

  /** Takes the line at `index` out of the queue (it is being sent). */
  removeAt(index: number): ClaimedItem {
    const [item] = this.#lines.splice(index, 1);
    this.#bytes -= item!.body.length;
    return item!;
  }

  /** A claimed chunk's lines: queued, or returned when their batch was stopped meanwhile. */
  add(lease: ChunkLease, batchId: string, items: ClaimedItem[]): StopState | undefined {
    // A chunk with nothing left to send is not held (nor renewed): the lease sweep finishes it.
    if (items.length > 0) this.#held.set(lease.chunk_id, { lease, open: items.length });
    const stopped = this.#stopped.get(batchId)?.state;
    if (stopped) return stopped;
    for (const item of items) this.#bytes += item.body.length;
    this.#lines.push(...items);
    return undefined;
  }

  /** Reorders the unsent lines (prefix-aware order): the same lines, in the order given. */
  reorder(order: (lines: readonly ClaimedItem[]) => ClaimedItem[]): void {
    this.#lines = order(this.#lines);
  }

  /** Removes and returns the claimed, unsent lines that match. */
  take(match: (item: ClaimedItem) => boolean): ClaimedItem[] {
    const taken: ClaimedItem[] = [];
    const keep: ClaimedItem[] = [];
    for (const item of this.#lines) (match(item) ? taken : keep).push(item);
    this.#lines = keep;
    for (const item of taken) this.#bytes -= item.body.length;
    return taken;
  }

  /** A line left the dispatcher's hands (recorded, stopped, or given up). */
  close(item: ClaimedItem): void {
    const held = this.#held.get(item.chunk_id);
    if (!held || held.lease.lease_gen !== item.lease_gen) return;
    held.open--;
    if (held.open <= 0) this.#held.delete(item.chunk_id);
  }

  /** Forgets chunks whose lease was taken back, and their unsent lines. */
  revoke(leases: readonly ChunkLease[]): void {
    const revoked = new Set<number>();
    for (const lease of leases) {
      if (this.#held.get(lease.chunk_id)?.lease.lease_gen !== lease.lease_gen) continue;
      revoked.add(lease.chunk_id);
      this.#held.delete(lease.chunk_id);
    }
    if (revoked.size > 0) this.take((i) => revoked.has(i.chunk_id));
  }

  /** Lets go of every held chunk (shutdown); returns their leases. */
  releaseAll(): ChunkLease[] {
    const leases = this.heldLeases;
    this.take(() => true);
    this.#held.clear();
    return leases;
  }

  /** From now on the batch's lines must not go out; returns its unsent lines. */
  stopBatch(batchId: string, state: StopState, nowMs: number): ClaimedItem[] {
    this.#stopped.set(batchId, { state, atMs: nowMs });
    return this.take((i) => i.batch_id === batchId);
  }

  stoppedState(batchId: string): StopState | undefined {
    return this.#stopped.get(batchId)?.state;
  }

  /** Forgets stopped batches after a while: by then none of their chunks can still be claimed. */
  pruneStopped(nowMs: number): void {
    for (const [id, s] of this.#stopped)
      if (s.atMs < nowMs - STOPPED_MEMORY_MS) this.#stopped.delete(id);
  }
}
