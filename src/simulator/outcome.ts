import type { SimAction, SimDirective } from './directives.ts';
import type { SimState } from './sim-state.ts';
import type { SimFault } from './types.ts';

/** How one admitted request will be answered; decided (and logged) before the latency wait. */
export interface Outcome {
  /** 0 when nothing will be answered (reset, hang). */
  status: number;
  fault: SimFault | null;
  action: SimAction | null;
  trickleMs: number | null;
  latencyMs: number;
}

export function decideOutcome(
  state: SimState,
  directive: SimDirective | null,
  hashHex: string,
): Outcome {
  const outcome: Outcome = {
    status: 200,
    fault: null,
    action: null,
    trickleMs: null,
    latencyMs: latencyOf(state, directive),
  };
  const scripted = directive !== null && (directive.status !== null || directive.action !== null);
  if (scripted) {
    if (claimScriptedFault(state, directive, hashHex)) applyScripted(outcome, directive);
  } else if (state.failRate > 0 && state.random() < state.failRate) {
    const index = Math.floor(state.random() * state.failStatuses.length);
    outcome.status = state.failStatuses[index] ?? 500;
    outcome.fault = 'status';
  }
  if (directive?.trickleMs != null && outcome.status !== 0) {
    outcome.trickleMs = directive.trickleMs;
    outcome.fault ??= 'trickle';
  }
  return outcome;
}

/** True when this call should get the scripted fault; `xN` directives stop after N calls per body. */
function claimScriptedFault(state: SimState, directive: SimDirective, hashHex: string): boolean {
  if (directive.times === null) return true;
  const used = state.faultCounts.get(hashHex) ?? 0;
  if (used >= directive.times) return false;
  state.faultCounts.set(hashHex, used + 1);
  return true;
}

function applyScripted(outcome: Outcome, directive: SimDirective): void {
  switch (directive.action) {
    case 'reset':
    case 'hang':
      outcome.status = 0;
      outcome.fault = directive.action;
      outcome.action = directive.action;
      return;
    case 'reset-mid-body':
    case 'malformed':
      outcome.fault = directive.action;
      outcome.action = directive.action;
      return;
    case null:
      if (directive.status !== null && directive.status !== 200) {
        outcome.status = directive.status;
        outcome.fault = 'status';
      }
      return;
  }
}

function latencyOf(state: SimState, directive: SimDirective | null): number {
  // A scripted latency is exact; the configured one gets jitter and, in capacity mode, load.
  if (directive?.latencyMs != null) return directive.latencyMs;
  let latencyMs = state.latencyMs;
  if (state.latencyJitterMs > 0) latencyMs += (state.random() * 2 - 1) * state.latencyJitterMs;
  if (state.gate !== null && state.capacity !== null) {
    const slots = Math.max(1, state.capacity.slots);
    latencyMs *= 1 + (state.gate.active / slots) * 0.5;
    latencyMs += (state.capacity.latencyPerQueuedMs ?? 0) * state.gate.waiting;
  }
  return Math.max(0, latencyMs);
}
