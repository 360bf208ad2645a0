import { Counter, type Registry } from 'prom-client';
import type { CostTotal } from '../engine/engine.ts';

/**
 * Money by upstream and model (issue 13): what this process charged (`price="charged"`, at the
 * price lines ran at) and what the same usage costs at the standard price, plus cache hits.
 * Counted by the engine since start-up; the per-batch figures in the store survive restarts.
 */
export function registerCostSeries(registry: Registry, totals: () => CostTotal[]): void {
  new Counter({
    name: 'openbatch_cost_usd_total',
    help: 'USD charged for batch lines by upstream and model (price: charged | standard)',
    labelNames: ['upstream', 'model', 'price'],
    registers: [registry],
    collect() {
      this.reset();
      for (const t of totals()) {
        const labels = { upstream: t.upstream, model: t.model };
        this.inc({ ...labels, price: 'charged' }, t.charged_nano / 1e9);
        this.inc({ ...labels, price: 'standard' }, t.standard_nano / 1e9);
      }
    },
  });
  new Counter({
    name: 'openbatch_cache_hits_total',
    help: 'Batch lines answered from the response cache, by upstream and model',
    labelNames: ['upstream', 'model'],
    registers: [registry],
    collect() {
      this.reset();
      for (const t of totals()) this.inc({ upstream: t.upstream, model: t.model }, t.cache_hits);
    },
  });
}
