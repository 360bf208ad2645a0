import type { ErrorSpec } from './error-bodies.ts';
import type { PrefixCache } from './prefix-cache.ts';

/** Shared shapes between the request flow (simulator.ts) and the per-endpoint reply builders. */

export interface ReplyContext {
  /** Hex sha256 of the raw request body: the seed of everything deterministic in the reply. */
  hashHex: string;
  nowMs: number;
  /** A fresh OpenAI-looking id with this prefix (`chatcmpl-`, `resp_`, …). */
  readonly newId: (prefix: string) => string;
}

export interface SimReply {
  /** 'sse' replies are sent as text/event-stream. */
  kind: 'json' | 'sse';
  body: string;
}

/** What a valid request will cost and how to answer it once the outcome is decided. */
export interface RoutePlan {
  ok: true;
  /** Tokens charged against TPM at admission: prompt estimate + max tokens (16 when absent). */
  admissionTokens: number;
  render(ctx: ReplyContext): SimReply;
}

export interface RouteRejection {
  ok: false;
  status: number;
  error: ErrorSpec;
}

export interface SimRoute {
  /** Used when the body has no `model` (only moderations); otherwise `model` is required. */
  defaultModel: string | null;
  /** `prefixCache`: the modelled prompt cache, consulted as the request arrives (chat only). */
  plan(
    body: Record<string, unknown>,
    model: string,
    prefixCache?: PrefixCache | null,
  ): RoutePlan | RouteRejection;
}

export const DEFAULT_MAX_TOKENS = 16;

export function reject(status: number, error: ErrorSpec): RouteRejection {
  return { ok: false, status, error };
}
