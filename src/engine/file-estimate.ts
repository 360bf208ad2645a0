import { validateLine } from '../domain/line-validation.ts';
import { nanoToUsd } from '../domain/price-book.ts';
import { readJsonlLines } from '../lib/jsonl-lines.ts';
import type { BatchEndpoint } from '../protocol/endpoints.ts';
import type { EstimateLimits, FileEstimateBody } from '../protocol/file-estimate.ts';
import { tokenizerFor } from '../protocol/model-tokenizer.ts';
import { countRequestTokens, DEFAULT_ASSUMED_MAX_TOKENS } from '../protocol/request-tokens.ts';
import type { CostControl } from './cost-control.ts';
import type { EngineDeps } from './engine-deps.ts';
import {
  EXACT_TOKEN_CHARS,
  LIMIT_HEADROOM,
  type UpstreamSchedulerSnapshot,
} from './limiter/upstream-scheduler.ts';

/** GCRA buckets hold about one second of capacity: that much goes at once. */
const BURST_SECONDS = 1;

/** The estimate the engine computes; the route adds whether it fits the window. */
export type FileEstimate = Omit<FileEstimateBody, 'fits_completion_window'>;

/** One (upstream, model) of the file: the unit the limiter keys its buckets on. */
interface Group {
  upstream: string;
  model: string;
  requests: number;
  tokens: number;
}

/**
 * Counts a file's valid lines with the admission tokenizer, prices them with the engine's price
 * book, and times them against each upstream's configured or learned limits, the lines already
 * queued there included. Groups on different buckets run side by side: the slowest sets the ETA.
 */
export async function estimateFile(
  deps: EngineDeps,
  costs: CostControl,
  snapshots: readonly UpstreamSchedulerSnapshot[],
  req: { fileId: string; endpoint: BatchEndpoint; completionWindow: string },
): Promise<FileEstimate> {
  const groups = new Map<string, Group>();
  const totals = { requests: 0, invalid: 0, input: 0, output: 0, standard: 0, batch: 0 };
  const ctx = {
    endpoint: req.endpoint,
    limits: deps.options.limits,
    routeModel: (model: string) => deps.upstreams.resolve(model)?.name ?? null,
  };
  const stream = deps.blobs.openRead(req.fileId);
  try {
    for await (const line of readJsonlLines(stream, ctx.limits.maxLineBytes)) {
      if (line.text !== null && line.text.trim() === '') continue;
      const verdict = validateLine(line.text, line.lineNo, ctx);
      if (!verdict.ok) {
        totals.invalid++;
        continue;
      }
      const { model, upstream, body } = verdict.line;
      const defaultMaxTokens =
        deps.options.scheduling.get(upstream)?.defaultMaxTokens ?? DEFAULT_ASSUMED_MAX_TOKENS;
      const t = countRequestTokens(
        JSON.parse(body) as Record<string, unknown>,
        tokenizerFor(model),
        {
          defaultMaxTokens,
          exactChars: EXACT_TOKEN_CHARS,
        },
      );
      totals.requests++;
      totals.input += t.input;
      totals.output += t.maxOutput;
      totals.standard += costs.prices.boundNano(upstream, model, t, 'standard');
      totals.batch += costs.prices.boundNano(upstream, model, t, 'batch');
      const key = `${upstream}\u0000${model}`;
      const g = groups.get(key) ?? { upstream, model, requests: 0, tokens: 0 };
      g.requests++;
      g.tokens += t.input + t.maxOutput;
      groups.set(key, g);
    }
  } finally {
    stream.destroy();
  }
  const queued = await deps.store.queuedLines();
  const timing = eta(deps, [...groups.values()], snapshots, queued);
  return {
    object: 'batch.estimate',
    file_id: req.fileId,
    endpoint: req.endpoint,
    completion_window: req.completionWindow,
    requests: totals.requests,
    invalid_lines: totals.invalid,
    input_tokens: totals.input,
    max_output_tokens: totals.output,
    cost_usd: { standard: nanoToUsd(totals.standard), batch: nanoToUsd(totals.batch) },
    eta_seconds: timing.seconds === null ? null : Math.round(timing.seconds * 10) / 10,
    queued_ahead: timing.queuedAhead,
    limits: timing.limits,
  };
}

function eta(
  deps: EngineDeps,
  groups: Group[],
  snapshots: readonly UpstreamSchedulerSnapshot[],
  queued: readonly { upstream: string; lines: number }[],
): { seconds: number | null; queuedAhead: number; limits: EstimateLimits } {
  let worst: { seconds: number | null; limits: EstimateLimits } = {
    seconds: groups.length === 0 ? 0 : null,
    limits: { upstream: null, model: null, binding: 'none', rpm: null, tpm: null, source: 'none' },
  };
  let queuedAhead = 0;
  const upstreamRequests = new Map<string, number>();
  for (const g of groups)
    upstreamRequests.set(g.upstream, (upstreamRequests.get(g.upstream) ?? 0) + g.requests);
  for (const [upstream] of upstreamRequests)
    queuedAhead += queued.find((q) => q.upstream === upstream)?.lines ?? 0;
  for (const g of groups) {
    const ahead = queued.find((q) => q.upstream === g.upstream)?.lines ?? 0;
    // Lines queued ahead on the upstream are spread over its models like this file's lines.
    const share = ahead * (g.requests / (upstreamRequests.get(g.upstream) ?? g.requests));
    const timing = groupSeconds(
      deps,
      g,
      share,
      snapshots.find((s) => s.upstream === g.upstream),
    );
    if (timing.seconds !== null && (worst.seconds === null || timing.seconds > worst.seconds))
      worst = timing;
  }
  // The supervisor starts a batch and finalizes it on its ticks.
  const overhead = (2 * deps.options.tickMs) / 1000;
  return {
    seconds: worst.seconds === null ? null : worst.seconds + overhead,
    queuedAhead,
    limits: worst.limits,
  };
}

/** Seconds to push one group (and its share of the queue) through its bucket or its concurrency. */
function groupSeconds(
  deps: EngineDeps,
  g: Group,
  ahead: number,
  snapshot: UpstreamSchedulerSnapshot | undefined,
): { seconds: number | null; limits: EstimateLimits } {
  const configured = deps.options.scheduling.get(g.upstream);
  const learned = snapshot?.keys.find((k) => k.key === g.model && k.source === 'headers');
  const rpm = learned?.rpm ?? configured?.rpm ?? null;
  const tpm = learned?.tpm ?? configured?.tpm ?? null;
  const source = learned ? 'headers' : rpm !== null || tpm !== null ? 'config' : 'none';
  const requests = g.requests + ahead;
  const tokens = g.tokens * (requests / g.requests);
  const byRate = (count: number, perMinute: number | null): number | null => {
    if (perMinute === null) return null;
    const perSecond = (perMinute * LIMIT_HEADROOM) / 60;
    return Math.max(0, count - perSecond * BURST_SECONDS) / perSecond;
  };
  const byRpm = byRate(requests, rpm);
  const byTpm = byRate(tokens, tpm);
  const base = { upstream: g.upstream, model: g.model, rpm, tpm };
  if (byRpm !== null || byTpm !== null) {
    const binding = (byTpm ?? -1) > (byRpm ?? -1) ? 'tpm' : 'rpm';
    return { seconds: Math.max(byRpm ?? 0, byTpm ?? 0), limits: { ...base, binding, source } };
  }
  const latencyMs = snapshot?.baselineLatencyMs ?? null;
  if (latencyMs === null || !snapshot)
    return { seconds: null, limits: { ...base, binding: 'none', source } };
  const seconds = (Math.ceil(requests / snapshot.concurrencyLimit) * latencyMs) / 1000;
  return { seconds, limits: { ...base, binding: 'concurrency', source: 'adaptive' } };
}
