import type { Logger } from '../lib/logger.ts';
import type { UpstreamSchedulerSnapshot } from './limiter/upstream-scheduler.ts';

type Change = [from: unknown, to: unknown];

/** Longer limiter keys are not valid model names; remembering them would hold their memory. */
const MAX_KEY_CHARS = 256;

/** What is compared between two looks at one upstream's scheduler. */
function fingerprint(s: UpstreamSchedulerSnapshot): Map<string, unknown> {
  const f = new Map<string, unknown>([
    ['concurrency_limit', s.concurrencyLimit],
    ['adaptive', s.adaptive],
  ]);
  for (const k of s.keys) {
    if (k.key.length > MAX_KEY_CHARS) continue;
    f.set(`${k.key}.rpm`, k.rpm);
    f.set(`${k.key}.tpm`, k.tpm);
    f.set(`${k.key}.source`, k.source);
    f.set(`${k.key}.cooling_down`, k.cooldownMs > 0);
  }
  return f;
}

/**
 * Logs one `limiter.changed` line per upstream whose limits changed since the last look (the
 * supervisor looks every tick): the adaptive concurrency limit, a rate limit configured or learned
 * from headers, a 429 cooldown starting or ending. Each line names what changed, from → to.
 */
export class LimiterChangeLog {
  readonly #logger: Logger;
  readonly #last = new Map<string, Map<string, unknown>>();

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  observe(snapshots: readonly UpstreamSchedulerSnapshot[]): void {
    for (const s of snapshots) {
      const now = fingerprint(s);
      const before = this.#last.get(s.upstream);
      this.#last.set(s.upstream, now);
      if (!before) continue;
      const changes: Record<string, Change> = {};
      for (const [name, value] of now) {
        // A model seen for the first time with nothing known about it is not a change.
        const was = before.has(name) ? before.get(name) : null;
        if (!before.has(name) && (value === null || value === false || value === 'none')) continue;
        if (was !== value) changes[name] = [was, value];
      }
      if (Object.keys(changes).length > 0)
        this.#logger.info(
          { event: 'limiter.changed', upstream: s.upstream, changes },
          'upstream limiter changed',
        );
    }
  }
}
