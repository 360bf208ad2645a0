import {
  emptyUsage,
  type BatchRecord,
  type ItemOutcome,
  type UsageTotals,
} from '../../domain/records.ts';
import { addUsage } from '../../protocol/token-usage.ts';
import type { UpstreamProgress } from '../../domain/batch-execution.ts';
import { coerceError } from '../../lib/coerce-error.ts';
import { ProviderError } from '../../providers/provider.ts';
import type { NativeSubRecord } from '../../store/store.ts';
import type { EngineDeps } from '../engine-deps.ts';
import type { ResultRecorder } from '../result-recorder.ts';
import { nativeQueue, type NativeUpstream } from './native-options.ts';
import { NativePlanner } from './native-planner.ts';
import { QueueLimits } from './queue-limits.ts';
import { failedOutcomes, outcomesOf } from './sub-batch-merge.ts';
import { findByMarker, firstError, isTerminal, MARKER_KEY } from './sub-batch-submit.ts';

/** Most a single upstream request of the runner may take. */
const CALL_TIMEOUT_MS = 120_000;
/** A search for a lost create looks this far before the intent was written. */
const SEARCH_SLACK_MS = 3_600_000;

/**
 * Runs one upstream's native queue through its Batch API: plans sub-batches from the backlog
 * (NativePlanner), creates them (intent row first, found by its marker after a crash), polls
 * them with backoff, merges their results through the group commit once, and ends the lines of
 * batches that are cancelled, expired or (auto) out of time.
 */
export class NativeRunner {
  readonly name: string;
  readonly #deps: EngineDeps;
  readonly #upstream: NativeUpstream;
  readonly #recorder: ResultRecorder;
  readonly #limits: QueueLimits;
  readonly #planner: NativePlanner;
  readonly #queue: string;
  /** Markers whose create this process tried: a retry looks for the batch first. */
  readonly #attempted = new Set<string>();
  readonly #startedMs: number;
  /** The upstream_progress last written per batch. */
  readonly #shown = new Map<string, UpstreamProgress>();

  constructor(deps: EngineDeps, name: string, upstream: NativeUpstream, recorder: ResultRecorder) {
    this.name = name;
    this.#deps = deps;
    this.#upstream = upstream;
    this.#recorder = recorder;
    this.#queue = nativeQueue(name);
    this.#limits = new QueueLimits(upstream.settings.queueTokens);
    this.#planner = new NativePlanner(deps, name, upstream, this.#limits);
    this.#startedMs = deps.clock.nowMs();
  }

  /** One pass: every open sub-batch, then batches to end, then new sub-batches. */
  async tick(signal: AbortSignal): Promise<void> {
    const { store } = this.#deps;
    const batches = new Map<string, BatchRecord | null>();
    const batchOf = async (id: string): Promise<BatchRecord | null> => {
      if (!batches.has(id)) batches.set(id, await store.getBatchById(id));
      return batches.get(id) ?? null;
    };
    for (const sub of await store.native.openSubs(this.name)) {
      if (signal.aborted) return;
      const batch = await batchOf(sub.batch_id);
      await this.#dutyFor(sub, batch, signal);
    }
    const open = await store.native.openSubs(this.name);
    await this.#showProgress(open);
    await this.#endBatches(open, signal);
    await this.#planner.plan(open, (b) => this.#stopReason(b) !== null, signal);
  }

  /** Why the batch's native lines must stop now (null: they may run on). */
  #stopReason(batch: BatchRecord | null): 'cancelled' | 'expired' | 'fallback' | null {
    if (!batch || batch.status === 'cancelling' || batch.status === 'cancelled') return 'cancelled';
    if (batch.status !== 'in_progress') return 'expired';
    const now = this.#deps.clock.nowMs();
    if (now >= batch.expires_at_ms) return 'expired';
    const { mode, fallbackMarginMs } = this.#upstream.settings;
    if (mode === 'auto' && now >= batch.expires_at_ms - fallbackMarginMs) return 'fallback';
    return null;
  }

  /** Works on one sub-batch under its duty lock (one process of a cluster at a time), read again. */
  async #dutyFor(
    sub: NativeSubRecord,
    batch: BatchRecord | null,
    signal: AbortSignal,
  ): Promise<void> {
    await this.#deps.store.withBatchDuty(`native:${sub.marker}`, async () => {
      const fresh = await this.#deps.store.native.getSub(sub.marker);
      if (!fresh || !['intent', 'submitted', 'ended'].includes(fresh.state)) return;
      try {
        await this.#advance(fresh, batch, signal);
      } catch (err) {
        this.#deps.logger.warn(
          { upstream: this.name, sub: sub.marker, err: coerceError(err).message },
          'sub-batch step failed; will retry',
        );
      }
    });
  }

  async #advance(
    sub: NativeSubRecord,
    batch: BatchRecord | null,
    signal: AbortSignal,
  ): Promise<void> {
    const stop = this.#stopReason(batch);
    if (sub.state === 'intent') return this.#submit(sub, batch, stop !== null, signal);
    if (sub.state === 'submitted') return this.#poll(sub, stop !== null, signal);
    if (batch) await this.#merge(sub, batch, signal);
    else await this.#deps.store.native.releaseSub(sub.marker, 'released');
  }

  async #submit(
    sub: NativeSubRecord,
    batch: BatchRecord | null,
    stopping: boolean,
    signal: AbortSignal,
  ): Promise<void> {
    const { store, clock } = this.#deps;
    const api = this.#upstream.api;
    const call = callSignal(signal);
    const maybeCreated = sub.created_at_ms < this.#startedMs || this.#attempted.has(sub.marker);
    const found = maybeCreated
      ? await findByMarker(api, sub.marker, sub.created_at_ms - SEARCH_SLACK_MS, call)
      : null;
    if (found) {
      this.#deps.logger.info(
        { sub: sub.marker, upstreamBatch: found.id },
        'found sub-batch created before a restart',
      );
      return store.native.updateSub(sub.marker, {
        state: 'submitted',
        upstream_batch_id: found.id,
        next_poll_ms: clock.nowMs(),
      });
    }
    if (stopping || !batch || !sub.upstream_input_file_id) {
      await this.#deleteFiles([sub.upstream_input_file_id], call);
      return store.native.releaseSub(sub.marker, 'released');
    }
    this.#attempted.add(sub.marker);
    try {
      const created = await api.createBatch(
        {
          input_file_id: sub.upstream_input_file_id,
          endpoint: batch.endpoint,
          metadata: { [MARKER_KEY]: sub.marker, openbatch_batch: batch.id },
        },
        call,
      );
      this.#deps.logger.info(
        {
          batchId: batch.id,
          sub: sub.marker,
          upstreamBatch: created.id,
          lines: sub.keys.length,
          model: sub.model,
          tokens: sub.tokens,
        },
        'sub-batch created',
      );
      await store.native.updateSub(sub.marker, {
        state: 'submitted',
        upstream_batch_id: created.id,
        upstream_status: created.status,
        next_poll_ms: clock.nowMs() + this.#upstream.settings.pollMs,
      });
    } catch (err) {
      if (!(err instanceof ProviderError) || err.retryable) throw err;
      // Refused outright (4xx): nothing was created; the lines go back and are planned again.
      this.#attempted.delete(sub.marker);
      await store.native.updateSub(sub.marker, { last_error: err.message });
      await this.#deleteFiles([sub.upstream_input_file_id], call);
      await store.native.releaseSub(sub.marker, 'released');
    }
  }

  async #poll(sub: NativeSubRecord, stopping: boolean, signal: AbortSignal): Promise<void> {
    const { store, clock } = this.#deps;
    const api = this.#upstream.api;
    const id = sub.upstream_batch_id ?? '';
    const call = callSignal(signal);
    if (stopping && !sub.cancel_requested && !isTerminal(sub.upstream_status)) {
      await api.cancelBatch(id, call).catch((err: unknown) => {
        // 409: it ended meanwhile; the poll below sees how.
        if (!(err instanceof ProviderError && err.status === 409)) throw err;
      });
      await store.native.updateSub(sub.marker, {
        cancel_requested: true,
        next_poll_ms: clock.nowMs(),
      });
      sub.next_poll_ms = clock.nowMs();
    }
    if (clock.nowMs() < sub.next_poll_ms) return;
    const info = await api.getBatch(id, call);
    if (!isTerminal(info.status)) {
      const backoff = Math.min(
        this.#upstream.settings.pollMs * 1.5 ** Math.min(sub.polls, 20),
        this.#upstream.settings.maxPollMs,
      );
      return store.native.updateSub(sub.marker, {
        upstream_status: info.status,
        upstream_completed: info.request_counts?.completed ?? 0,
        upstream_failed: info.request_counts?.failed ?? 0,
        polls: sub.polls + 1,
        next_poll_ms: clock.nowMs() + (stopping ? this.#upstream.settings.pollMs : backoff),
      });
    }
    if (info.status === 'failed') return this.#failed(sub, info, signal);
    await store.native.updateSub(sub.marker, { state: 'ended', upstream_status: info.status });
    const batch = await store.getBatchById(sub.batch_id);
    if (batch)
      await this.#merge({ ...sub, state: 'ended', upstream_status: info.status }, batch, signal);
  }

  /** A failed upstream batch: over the enqueued-token limit, its lines wait and go again. */
  async #failed(
    sub: NativeSubRecord,
    info: Parameters<typeof firstError>[0],
    signal: AbortSignal,
  ): Promise<void> {
    const { store } = this.#deps;
    const error = firstError(info);
    const call = callSignal(signal);
    const others = (await store.native.openSubs(this.name)).some(
      (s) => s.marker !== sub.marker && s.model === sub.model && s.state === 'submitted',
    );
    // One line refused with nothing else enqueued can never fit: it fails (with the upstream's
    // message) instead of being resubmitted forever.
    const hopeless = sub.keys.length === 1 && !others;
    if (error.code === 'token_limit_exceeded' && !hopeless) {
      const learned = this.#limits.rejected(sub.model, sub.tokens, error.message, others);
      this.#deps.logger.info(
        { sub: sub.marker, model: sub.model, tokens: sub.tokens, learnedLimit: learned },
        'sub-batch over the enqueued-token limit; its lines wait for room',
      );
      await store.native.updateSub(sub.marker, {
        upstream_status: 'failed',
        last_error: error.message,
      });
      await this.#deleteFiles([sub.upstream_input_file_id], call);
      return store.native.releaseSub(sub.marker, 'released');
    }
    const batch = await store.getBatchById(sub.batch_id);
    if (batch) await this.#record(failedOutcomes(sub, batch, error, this.#deps.clock.nowMs()));
    await store.native.updateSub(sub.marker, {
      upstream_status: 'failed',
      last_error: error.message,
    });
    await store.native.releaseSub(sub.marker, 'merged');
  }

  /** Records the ended sub-batch's results (once: a rerun after a crash finds its lines done). */
  async #merge(sub: NativeSubRecord, batch: BatchRecord, signal: AbortSignal): Promise<void> {
    const { store, clock } = this.#deps;
    const api = this.#upstream.api;
    const call = callSignal(signal);
    const info = await api.getBatch(sub.upstream_batch_id ?? '', call);
    const texts: string[] = [];
    for (const id of [info.output_file_id, info.error_file_id])
      if (id) texts.push(await api.fileContent(id, call));
    const outcomes = outcomesOf(sub, batch, texts, clock.nowMs());
    // At the price actually charged: the upstream's batch price (issue 13's cost on the batch).
    const prices = this.#deps.costs?.settings.prices;
    if (prices)
      for (const o of outcomes)
        if (o.kind === 'response' && o.usage)
          o.cost = prices.lineCost(this.name, sub.model, o.usage, 'batch');
    const applied = await this.#record(outcomes);
    if (applied.length > 0)
      await store.native.countExecution(batch.id, {
        native_lines: applied.length,
        native_usage: usageOf(applied),
      });
    await store.native.releaseSub(sub.marker, 'merged');
    this.#deps.logger.info(
      {
        batchId: batch.id,
        sub: sub.marker,
        status: info.status,
        merged: applied.length,
        lines: sub.keys.length,
      },
      'sub-batch merged',
    );
    await this.#deleteFiles(
      [sub.upstream_input_file_id, info.output_file_id, info.error_file_id],
      call,
    );
  }

  /** Pushes outcomes through the group commit; returns those applied. Throws unless all are recorded. */
  async #record(outcomes: ItemOutcome[]): Promise<ItemOutcome[]> {
    const applicable = await this.#deps.store.applicableOutcomes(outcomes);
    for (const o of applicable) this.#recorder.push(o);
    await this.#recorder.flush();
    if ((await this.#deps.store.applicableOutcomes(applicable)).length > 0)
      throw new Error('merged results were not recorded yet');
    return applicable;
  }

  /**
   * Writes each batch's `execution.upstream_progress` (its open sub-batches summed) when it
   * changed, and removes it once none is open: live progress while the upstream works.
   */
  async #showProgress(open: readonly NativeSubRecord[]): Promise<void> {
    const now = new Map<string, UpstreamProgress>();
    for (const s of open) {
      const p = now.get(s.batch_id) ?? { sub_batches: 0, lines: 0, completed: 0, failed: 0 };
      p.sub_batches += 1;
      p.lines += s.keys.length;
      p.completed += s.upstream_completed;
      p.failed += s.upstream_failed;
      now.set(s.batch_id, p);
    }
    for (const batchId of new Set([...now.keys(), ...this.#shown.keys()])) {
      const p = now.get(batchId) ?? null;
      if (JSON.stringify(p) === JSON.stringify(this.#shown.get(batchId) ?? null)) continue;
      await this.#deps.store.native.countExecution(batchId, { upstream_progress: p });
      if (p) this.#shown.set(batchId, p);
      else this.#shown.delete(batchId);
    }
  }

  /** Ends native lines of batches that must stop, once none of their sub-batches is open. */
  async #endBatches(open: readonly NativeSubRecord[], signal: AbortSignal): Promise<void> {
    const { store } = this.#deps;
    const busy = new Set(open.map((s) => s.batch_id));
    for (const batch of await store.batchesWithStatus(['in_progress', 'cancelling'])) {
      if (
        signal.aborted ||
        busy.has(batch.id) ||
        !batch.execution ||
        batch.execution.mode === 'realtime'
      )
        continue;
      const stop = this.#stopReason(batch);
      if (stop === null) continue;
      const target = stop === 'fallback' ? { upstream: this.name } : { stop };
      const lines = await store.native.moveNativeLines(batch.id, this.#queue, target);
      if (lines === 0) continue;
      if (stop === 'fallback')
        await store.native.countExecution(batch.id, { fallback_lines: lines });
      this.#deps.logger.info({ batchId: batch.id, lines, to: stop }, 'native lines moved');
    }
  }

  async #deleteFiles(
    ids: readonly (string | null | undefined)[],
    signal: AbortSignal,
  ): Promise<void> {
    if (!this.#upstream.settings.deleteFiles) return;
    for (const id of ids)
      if (id) await this.#upstream.api.deleteFile(id, signal).catch(() => undefined); // best effort
  }
}

function callSignal(signal: AbortSignal): AbortSignal {
  return AbortSignal.any([signal, AbortSignal.timeout(CALL_TIMEOUT_MS)]);
}

/** Token usage of the answers among `outcomes` (what ran at the batch price). */
function usageOf(outcomes: readonly ItemOutcome[]): UsageTotals {
  const usage = emptyUsage();
  for (const o of outcomes) if (o.kind === 'response' && o.usage) addUsage(usage, o.usage);
  return usage;
}
