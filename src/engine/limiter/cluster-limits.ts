import type { Clock } from '../../lib/clock.ts';
import { coerceError } from '../../lib/coerce-error.ts';
import type { Logger } from '../../lib/logger.ts';
import type { WakeSignal } from '../../lib/wake-signal.ts';
import type { LimiterExchangeReply, Store } from '../../store/store.ts';
import type { UpstreamScheduler } from './upstream-scheduler.ts';

/** How often each process tells the others what it sends on, and reads what they do. */
export const HEARTBEAT_MS = 250;
/**
 * A process sends on a key while it used it this recently (a line waiting for the key counts):
 * one whose lines ran out hands its share back about this long after its last line.
 */
export const ACTIVE_WINDOW_MS = 750;
/**
 * A process counts, with its keys, for this long after its last heartbeat: several heartbeats,
 * as a busy event loop or database delays some, and a process killed with -9 stops counting
 * after it.
 */
export const LIVE_WINDOW_MS = 3_000;
/**
 * On a key new to the cluster, a larger share is taken only once it has been due this long:
 * processes that start on a key at the same moment report it a heartbeat apart, and the first
 * to report must not take the whole limit before it sees the others. Smaller shares apply at
 * once, and so do larger ones when a process stopped sending on the key.
 */
export const RAISE_AFTER_MS = 2 * HEARTBEAT_MS;
/**
 * A process starting on a key others send on waits this long first: its own heartbeat, then
 * theirs, so they have slowed down before it sends.
 */
export const JOIN_HOLD_MS = 2 * HEARTBEAT_MS + 100;
/** Separates the upstream from the model in an exchange key (neither may contain it). */
const KEY_SEPARATOR = '\u001f';

/**
 * Rate limits shared by every process on one shared store (design: shares by live membership).
 *
 * Each process runs the limiter it runs alone, at a share of each limit: 1 / the processes
 * sending on that (upstream, model) now. Every HEARTBEAT_MS it records the keys it used in the
 * database and reads who else did; a key nobody uses yet starts at 1 / live processes, so a
 * batch that starts on all of them at once never bursts at N times the limit. A 429 seen by one
 * process is published with its retry-after, and every process waits it out.
 *
 * The alternative, central buckets in the database, costs a round trip per request (100 per
 * second per process at 6,000 RPM); this costs one per heartbeat per process, whatever the rate.
 * Its price is up to ACTIVE_WINDOW_MS + HEARTBEAT_MS at a reduced share when a process runs out
 * of work, and as long at a combined share above 1 when one joins a key others are using.
 */
export class ClusterLimits {
  readonly #exchange: NonNullable<Store['limiterExchange']>;
  readonly #schedulers: readonly UpstreamScheduler[];
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #memberId: string;
  #failing = false;
  /** Share in force per exchange key, and since when a larger one has been due. */
  readonly #shares = new Map<string, HeldShare>();

  constructor(
    exchange: NonNullable<Store['limiterExchange']>,
    schedulers: readonly UpstreamScheduler[],
    deps: { clock: Clock; logger: Logger; memberId: string },
  ) {
    this.#exchange = exchange;
    this.#schedulers = schedulers;
    this.#clock = deps.clock;
    this.#logger = deps.logger;
    this.#memberId = deps.memberId;
  }

  /** Heartbeats until `signal` aborts; a failed heartbeat keeps the shares last known. */
  async run(signal: AbortSignal, sleep: WakeSignal): Promise<void> {
    while (!signal.aborted) {
      await this.beat();
      await sleep.wait(HEARTBEAT_MS, signal);
    }
  }

  /** One exchange: what this process used and saw, then the shares and cooldowns that follow. */
  async beat(): Promise<void> {
    const now = this.#clock.nowMs();
    const since = now - ACTIVE_WINDOW_MS;
    const activeKeys: string[] = [];
    const cooldowns = new Map<string, number>();
    for (const s of this.#schedulers) {
      for (const model of s.modelsUsedSince(since)) activeKeys.push(keyOf(s, model));
      for (const [model, ms] of s.takeCooldowns()) cooldowns.set(keyOf(s, model), ms);
    }
    try {
      const reply = await this.#exchange({
        memberId: this.#memberId,
        activeKeys,
        cooldowns,
        liveWindowMs: LIVE_WINDOW_MS,
      });
      this.#apply(reply, new Set(activeKeys), now);
      if (this.#failing) this.#logger.info({}, 'cluster rate-limit exchange is back');
      this.#failing = false;
    } catch (err) {
      if (!this.#failing)
        this.#logger.warn(
          { err: coerceError(err).message },
          'cluster rate-limit exchange failed; keeping the last shares',
        );
      this.#failing = true;
    }
  }

  #apply(reply: LimiterExchangeReply, mine: ReadonlySet<string>, nowMs: number): void {
    const defaultShare = 1 / Math.max(1, reply.liveMembers);
    // A process not sending on a key yet would join those that are.
    const usersOf = (key: string): number =>
      Math.max(1, (reply.activeByKey.get(key) ?? 0) + (mine.has(key) ? 0 : 1));
    const keys = new Set([...reply.activeByKey.keys(), ...this.#shares.keys()]);
    for (const key of keys) {
      const users = reply.activeByKey.has(key) ? usersOf(key) : Math.max(1, reply.liveMembers);
      this.#settleShare(key, users, defaultShare, nowMs);
      // Nobody sends on it and it is back at the default: nothing to remember.
      if (!reply.activeByKey.has(key) && this.#shares.get(key)?.share === defaultShare)
        this.#shares.delete(key);
    }
    for (const s of this.#schedulers) {
      const byModel = new Map<string, number>();
      const cooldownMs = new Map<string, number>();
      const prefix = `${s.upstream.name}${KEY_SEPARATOR}`;
      for (const [key, { share }] of this.#shares)
        if (key.startsWith(prefix)) byModel.set(key.slice(prefix.length), share);
      for (const [key, ms] of reply.cooldownMsByKey)
        if (key.startsWith(prefix)) cooldownMs.set(key.slice(prefix.length), ms);
      s.applyCluster({ defaultShare, byModel, joinHoldMs: JOIN_HOLD_MS }, cooldownMs);
    }
  }

  /**
   * Lowers a key's share at once; raises it at once when fewer processes send on it than
   * before, and otherwise (a key new to the cluster) once the raise was due for RAISE_AFTER_MS.
   */
  #settleShare(key: string, users: number, defaultShare: number, nowMs: number): void {
    // A key not remembered runs at the default share (see RateLimiter.setShares).
    const held = this.#shares.get(key) ?? {
      share: defaultShare,
      users: null,
      raiseDueSinceMs: null,
    };
    this.#shares.set(key, held);
    const target = 1 / users;
    const someoneLeft = held.users !== null && users < held.users;
    held.users = users;
    if (target <= held.share || someoneLeft) {
      held.share = target;
      held.raiseDueSinceMs = null;
    } else if (held.raiseDueSinceMs === null) held.raiseDueSinceMs = nowMs;
    else if (nowMs - held.raiseDueSinceMs >= RAISE_AFTER_MS) {
      held.share = target;
      held.raiseDueSinceMs = null;
    }
  }
}

/** A key's share in force, the processes it was computed for, and since when a raise is due. */
interface HeldShare {
  share: number;
  users: number | null;
  raiseDueSinceMs: number | null;
}

function keyOf(s: UpstreamScheduler, model: string): string {
  return `${s.upstream.name}${KEY_SEPARATOR}${model}`;
}
