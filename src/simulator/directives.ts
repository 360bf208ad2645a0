/** Per-request directives embedded in a request body as `[sim:key=value;...]`. */

export type SimAction = 'reset' | 'reset-mid-body' | 'hang' | 'malformed';

export interface SimDirective {
  /** Everything inside the brackets, recorded in the call log. */
  marker: string;
  status: number | null;
  /** Apply the fault only to the first N calls with the same body hash (`status=500x2`, `times=2`). */
  times: number | null;
  latencyMs: number | null;
  action: SimAction | null;
  trickleMs: number | null;
}

const MARKER = /\[sim:([^\]]*)\]/;
const ACTIONS: ReadonlySet<string> = new Set(['reset', 'reset-mid-body', 'hang', 'malformed']);

/** Finds and parses the first marker in the raw body text; null when there is none. */
export function parseDirective(bodyText: string): SimDirective | null {
  // indexOf first: the regex is only worth running on the rare bodies that carry a marker.
  if (!bodyText.includes('[sim:')) return null;
  const match = MARKER.exec(bodyText);
  if (match === null) return null;
  const marker = match[1] ?? '';
  const directive: SimDirective = {
    marker,
    status: null,
    times: null,
    latencyMs: null,
    action: null,
    trickleMs: null,
  };
  for (const part of marker.split(';')) applyPart(directive, part.trim());
  return directive;
}

function applyPart(directive: SimDirective, part: string): void {
  const eq = part.indexOf('=');
  const key = eq === -1 ? part : part.slice(0, eq);
  const value = eq === -1 ? '' : part.slice(eq + 1);
  if (ACTIONS.has(key)) {
    directive.action = key as SimAction;
    return;
  }
  switch (key) {
    case 'status':
      applyStatus(directive, value);
      return;
    case 'times':
      directive.times = toCount(value);
      return;
    case 'latency':
      directive.latencyMs = toCount(value);
      return;
    case 'trickle':
      directive.trickleMs = toCount(value);
      return;
    default:
      // `id=...` and unknown keys only tag the call; they never change its outcome.
      return;
  }
}

function applyStatus(directive: SimDirective, value: string): void {
  const [status, times] = value.split('x');
  const code = toCount(status ?? '');
  if (code !== null && code >= 100 && code <= 599) directive.status = code;
  if (times !== undefined) directive.times = toCount(times);
}

function toCount(text: string): number | null {
  const n = Number(text);
  return text !== '' && Number.isFinite(n) && n >= 0 ? Math.floor(n) : null;
}
