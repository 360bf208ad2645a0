import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { EngineFacade, UpstreamStatus } from '../engine/engine.ts';
import type { Upstream } from '../providers/provider.ts';
import type { BatchStatusTotals, Store } from '../store/store.ts';
import { instrumentUpstream, type UpstreamSeries } from './instrument-upstream.ts';
import { registerUpstreamGauges } from './upstream-gauges.ts';
import { registerCostSeries } from './cost-series.ts';

/** What /metrics reads at each scrape. */
export interface MetricsSources {
  store: Store;
  engine: EngineFacade;
}

/** The server's Prometheus registry: upstream calls counted as they happen, the rest read at scrape. */
export interface ServerMetrics {
  readonly contentType: string;
  /** Wraps an upstream so its calls are counted and timed. */
  instrument(upstream: Upstream): Upstream;
  /** Where scrapes read batches, lines, tokens, queues and limiter state (set once, in compose). */
  watch(sources: MetricsSources): void;
  /** The exposition text of every metric. */
  render(): Promise<string>;
}

const DURATION_BUCKETS_S = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
const TOKEN_KINDS = ['input', 'cached', 'output', 'reasoning'] as const;

interface Scrape {
  totals: BatchStatusTotals[];
  queued: { upstream: string; lines: number }[];
  upstreams: UpstreamStatus[];
}

export function createServerMetrics(nowMs: () => number): ServerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  let sources: MetricsSources | null = null;
  let scrape: Scrape = { totals: [], queued: [], upstreams: [] };
  const series: UpstreamSeries = {
    requests: new Counter({
      name: 'openbatch_upstream_requests_total',
      help: 'Calls to upstreams for batch lines, by HTTP status or transport failure kind',
      labelNames: ['upstream', 'model', 'status'],
      registers: [registry],
    }),
    durationSeconds: new Histogram({
      name: 'openbatch_upstream_request_duration_seconds',
      help: 'Duration of upstream calls for batch lines, headers and body',
      labelNames: ['upstream', 'model'],
      buckets: DURATION_BUCKETS_S,
      registers: [registry],
    }),
  };
  registerBatchSeries(registry, () => scrape);
  registerUpstreamGauges(registry, () => scrape);
  registerCostSeries(registry, () => sources?.engine.costTotals() ?? []);
  return {
    contentType: registry.contentType,
    instrument: (upstream) => instrumentUpstream(upstream, series, nowMs),
    watch: (s) => {
      sources = s;
    },
    render: async () => {
      if (sources) {
        const [totals, queued] = await Promise.all([
          sources.store.batchTotals(),
          sources.store.queuedLines(),
        ]);
        scrape = { totals, queued, upstreams: sources.engine.upstreamStatus() };
      }
      return registry.metrics();
    },
  };
}

/** Lines a terminal batch never ran (cancelled or expired before they were sent). */
const unrun = (t: BatchStatusTotals): number => Math.max(0, t.total - t.completed - t.failed);

function registerBatchSeries(registry: Registry, current: () => Scrape): void {
  new Gauge({
    name: 'openbatch_batches',
    help: 'Batches by status, every project',
    labelNames: ['status'],
    registers: [registry],
    collect() {
      this.reset();
      for (const t of current().totals) this.set({ status: t.status }, t.batches);
    },
  });
  new Counter({
    name: 'openbatch_lines_total',
    help: 'Lines finished, by outcome (read from the database: survives restarts)',
    labelNames: ['outcome'],
    registers: [registry],
    collect() {
      const sum = (f: (t: BatchStatusTotals) => number, only?: string): number =>
        current()
          .totals.filter((t) => only === undefined || t.status === only)
          .reduce((a, t) => a + f(t), 0);
      this.reset();
      this.inc(
        { outcome: 'completed' },
        sum((t) => t.completed),
      );
      this.inc(
        { outcome: 'failed' },
        sum((t) => t.failed),
      );
      this.inc({ outcome: 'expired' }, sum(unrun, 'expired'));
      this.inc({ outcome: 'cancelled' }, sum(unrun, 'cancelled'));
    },
  });
  new Counter({
    name: 'openbatch_tokens_total',
    help: 'Tokens reported by upstream responses, by kind (cached ⊂ input, reasoning ⊂ output)',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      this.reset();
      for (const kind of TOKEN_KINDS) {
        const field = `${kind}_tokens` as const;
        this.inc(
          { kind },
          current().totals.reduce((a, t) => a + t.usage[field], 0),
        );
      }
    },
  });
}
