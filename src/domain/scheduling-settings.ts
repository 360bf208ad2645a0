import { DEFAULT_ASSUMED_MAX_TOKENS } from '../protocol/request-tokens.ts';

/** How the adaptive (AIMD) concurrency limit is used; see `SchedulingSettings.adaptive`. */
export const ADAPTIVE_MODES = ['auto', 'on', 'off'] as const;
export type AdaptiveMode = (typeof ADAPTIVE_MODES)[number];

/** What an upstream's token limit counts; see `SchedulingSettings.tokenAccounting`. */
export const TOKEN_ACCOUNTING_MODES = ['max_tokens', 'usage'] as const;
export type TokenAccounting = (typeof TOKEN_ACCOUNTING_MODES)[number];

/**
 * How the engine's scheduler fills one upstream (design.md §5). Config builds it from the file or
 * the environment, compose hands it to the engine; the provider never sees it. It lives in
 * domain/ because both config/ and engine/ read it and neither may import the other.
 */
export interface SchedulingSettings {
  /** Requests per minute per model; learned from `x-ratelimit-*` headers when absent. */
  rpm?: number | undefined;
  /** Tokens per minute per model; learned from headers when absent. */
  tpm?: number | undefined;
  /**
   * AIMD concurrency for upstreams without rate-limit headers. `auto`: on until the upstream
   * sends `x-ratelimit-*` headers. @default 'auto'
   */
  adaptive: AdaptiveMode;
  /** Floor of the adaptive limit. @default 2 */
  minConcurrency: number;
  /** Output tokens assumed at admission when a request sets no max. @default 1024 */
  defaultMaxTokens: number;
  /**
   * What the upstream's token limit counts: OpenAI counts `max_tokens` at admission (the
   * reservation stays), others count real usage (the reservation is settled to it).
   * @default 'max_tokens'
   */
  tokenAccounting: TokenAccounting;
}

/** The defaults of every setting: no configured limits (headers teach them). */
export const DEFAULT_SCHEDULING: Readonly<SchedulingSettings> = Object.freeze({
  adaptive: 'auto',
  minConcurrency: 2,
  // The SDK's `estimate` assumes the same bound, so its turnaround matches what the server reserves.
  defaultMaxTokens: DEFAULT_ASSUMED_MAX_TOKENS,
  tokenAccounting: 'max_tokens',
});

/** Settings as a caller gives them: any field may be missing or undefined (not configured). */
export type SchedulingInput = {
  [K in keyof SchedulingSettings]?: SchedulingSettings[K] | undefined;
};

/** `given` over the defaults; a field given as `undefined` keeps its default. */
export function resolveScheduling(given: SchedulingInput): SchedulingSettings {
  const d = DEFAULT_SCHEDULING;
  return {
    rpm: given.rpm ?? d.rpm,
    tpm: given.tpm ?? d.tpm,
    adaptive: given.adaptive ?? d.adaptive,
    minConcurrency: given.minConcurrency ?? d.minConcurrency,
    defaultMaxTokens: given.defaultMaxTokens ?? d.defaultMaxTokens,
    tokenAccounting: given.tokenAccounting ?? d.tokenAccounting,
  };
}
