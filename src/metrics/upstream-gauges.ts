import { Counter, Gauge, type Registry } from 'prom-client';
import type { UpstreamStatus } from '../engine/engine.ts';

/** What the scheduler and the queue look like at a scrape. */
export interface UpstreamScrape {
  queued: { upstream: string; lines: number }[];
  upstreams: UpstreamStatus[];
}

type Row = UpstreamStatus;

/** A gauge per upstream, set from the scheduler's snapshot at each scrape. */
function perUpstream(
  registry: Registry,
  current: () => UpstreamScrape,
  name: string,
  help: string,
  value: (u: Row) => number,
): void {
  new Gauge({
    name,
    help,
    labelNames: ['upstream'],
    registers: [registry],
    collect() {
      this.reset();
      for (const u of current().upstreams) this.set({ upstream: u.upstream }, value(u));
    },
  });
}

/** A gauge per (upstream, model, kind) from the limiter's keys; unknown limits are left out. */
function perLimiterKey(
  registry: Registry,
  current: () => UpstreamScrape,
  name: string,
  help: string,
  value: (k: Row['keys'][number], kind: 'requests' | 'tokens') => number | null,
): void {
  new Gauge({
    name,
    help,
    labelNames: ['upstream', 'model', 'kind'],
    registers: [registry],
    collect() {
      this.reset();
      for (const u of current().upstreams)
        for (const k of u.keys.filter((key) => key.key.length <= 256))
          for (const kind of ['requests', 'tokens'] as const) {
            const v = value(k, kind);
            if (v !== null) this.set({ upstream: u.upstream, model: k.key, kind }, v);
          }
    },
  });
}

/** Queue depth and limiter state per upstream (the same figures as GET /admin/scheduler). */
export function registerUpstreamGauges(registry: Registry, current: () => UpstreamScrape): void {
  new Gauge({
    name: 'openbatch_queue_lines',
    help: 'Lines waiting to be claimed, per upstream (a chunk given back counts whole)',
    labelNames: ['upstream'],
    registers: [registry],
    collect() {
      this.reset();
      for (const q of current().queued) this.set({ upstream: q.upstream }, q.lines);
    },
  });
  const gauge = perUpstream.bind(null, registry, current);
  gauge('openbatch_upstream_in_flight', 'Requests in flight', (u) => u.inFlight);
  gauge('openbatch_upstream_claimed_lines', 'Lines claimed, not yet sent', (u) => u.claimed);
  gauge(
    'openbatch_upstream_concurrency_limit',
    'In-flight requests allowed now',
    (u) => u.concurrencyLimit,
  );
  gauge('openbatch_upstream_adaptive', '1 while the AIMD concurrency limit governs', (u) =>
    u.adaptive ? 1 : 0,
  );
  new Counter({
    name: 'openbatch_upstream_rate_limited_total',
    help: 'Answers with status 429 since the process started',
    labelNames: ['upstream'],
    registers: [registry],
    collect() {
      this.reset();
      for (const u of current().upstreams) this.inc({ upstream: u.upstream }, u.rateLimited);
    },
  });
  const key = perLimiterKey.bind(null, registry, current);
  key(
    'openbatch_limiter_limit_per_minute',
    'Rate limit per minute (configured or learned)',
    (k, kind) => (kind === 'requests' ? k.rpm : k.tpm),
  );
  key('openbatch_limiter_available', 'Capacity available now', (k, kind) =>
    kind === 'requests' ? k.availableRequests : k.availableTokens,
  );
  key('openbatch_limiter_cooldown_seconds', 'Time left in a 429 cooldown', (k, kind) =>
    kind === 'requests' ? k.cooldownMs / 1000 : null,
  );
}
