import { requestModel } from '../../domain/line-validation.ts';
import type { BatchRecord } from '../../domain/records.ts';
import type { NativeChunk, NativeSubRecord } from '../../store/store.ts';
import { readUndoneLines } from '../chunk-lines-loader.ts';
import type { EngineDeps } from '../engine-deps.ts';
import { nativeQueue, type NativeUpstream } from './native-options.ts';
import type { QueueLimits } from './queue-limits.ts';
import { newMarker } from './sub-batch-submit.ts';
import {
  estimateLineTokens,
  planSubBatches,
  type NativeLine,
  type SubDraft,
} from './sub-batch-plan.ts';

/** Chunks of the backlog looked at per pass (earliest deadline first). */
const BACKLOG_CHUNKS = 4_096;
/** Without a change (a sub-batch ended, new lines), the backlog is planned again after this. */
const REPLAN_MS = 5_000;

/**
 * Turns the native backlog into sub-batches as the enqueued-token room allows, earliest deadline
 * first (so across users' batches by deadline): each one's file is uploaded, then its intent row
 * written (the lines are marked handed in the same transaction); the runner creates it.
 */
export class NativePlanner {
  readonly #deps: EngineDeps;
  readonly #name: string;
  readonly #upstream: NativeUpstream;
  readonly #limits: QueueLimits;
  #lastSignature = '';
  #lastPlanMs = 0;

  constructor(deps: EngineDeps, name: string, upstream: NativeUpstream, limits: QueueLimits) {
    this.#deps = deps;
    this.#name = name;
    this.#upstream = upstream;
    this.#limits = limits;
  }

  async plan(
    open: readonly NativeSubRecord[],
    mustStop: (batch: BatchRecord | null) => boolean,
    signal: AbortSignal,
  ): Promise<void> {
    const { store, clock } = this.#deps;
    const backlog = await store.native.backlog(nativeQueue(this.#name), BACKLOG_CHUNKS);
    const signature = `${open.map((s) => s.marker).join(',')}|${backlog.map((c) => c.chunk_id).join(',')}`;
    const now = clock.nowMs();
    if (signature === this.#lastSignature && now - this.#lastPlanMs < REPLAN_MS) return;
    this.#lastSignature = signature;
    this.#lastPlanMs = now;
    const enqueued = new Map<string, number>();
    for (const s of open) enqueued.set(s.model, (enqueued.get(s.model) ?? 0) + s.tokens);
    for (const [batchId, chunks] of byBatch(backlog)) {
      if (signal.aborted) return;
      const batch = await store.getBatchById(batchId);
      if (!batch || mustStop(batch)) continue;
      const lines = await this.#freeLines(chunks);
      if (lines.length === 0) continue;
      const drafts = planSubBatches(lines, {
        maxLines: this.#upstream.settings.maxLines,
        maxBytes: this.#upstream.settings.maxBytes,
        room: (model) => this.#limits.budget(model) - (enqueued.get(model) ?? 0),
        busy: (model) => (enqueued.get(model) ?? 0) > 0,
      });
      for (const draft of drafts) {
        if (await this.#record(batch, draft, signal))
          enqueued.set(draft.model, (enqueued.get(draft.model) ?? 0) + draft.tokens);
      }
    }
  }

  async #freeLines(chunks: readonly NativeChunk[]): Promise<NativeLine[]> {
    const lines: NativeLine[] = [];
    for (const chunk of chunks) {
      const skip = chunk.done.map((d, i) => d | (chunk.sent[i] ?? 0));
      for (const { index, text } of await readUndoneLines(
        this.#deps.blobs,
        chunk.input_file_id,
        chunk,
        skip,
      )) {
        const parsed = JSON.parse(text) as { custom_id: string; body: Record<string, unknown> };
        const model = requestModel(chunk.endpoint, parsed.body);
        const bytes = Buffer.byteLength(text);
        lines.push({
          chunk_id: chunk.chunk_id,
          lease_gen: chunk.lease_gen,
          index,
          custom_id: parsed.custom_id,
          model: typeof model === 'string' ? model : '',
          text,
          bytes,
          tokens: estimateLineTokens(bytes),
        });
      }
    }
    return lines;
  }

  /** Uploads the sub-batch's file, then writes its intent; false when its lines were taken meanwhile. */
  async #record(batch: BatchRecord, draft: SubDraft, signal: AbortSignal): Promise<boolean> {
    const { store, clock } = this.#deps;
    const marker = newMarker();
    const content = Buffer.from(draft.lines.map((l) => l.text).join('\n') + '\n');
    const file = await this.#upstream.api.uploadFile(`${marker}.jsonl`, content, signal);
    const inserted = await store.native.insertSub(
      {
        marker,
        batch_id: batch.id,
        upstream: this.#name,
        model: draft.model,
        keys: draft.lines.map((l) => [l.chunk_id, l.lease_gen, l.index, l.custom_id] as const),
        tokens: draft.tokens,
        bytes: draft.bytes,
        created_at_ms: clock.nowMs(),
        upstream_input_file_id: file.id,
      },
      clock.nowMs(),
    );
    if (!inserted) await this.#upstream.api.deleteFile(file.id, signal).catch(() => undefined);
    return inserted;
  }
}

function byBatch(chunks: readonly NativeChunk[]): Map<string, NativeChunk[]> {
  const map = new Map<string, NativeChunk[]>();
  for (const c of chunks) {
    let list = map.get(c.batch_id);
    if (!list) map.set(c.batch_id, (list = []));
    list.push(c);
  }
  return map;
}
