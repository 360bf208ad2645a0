import type { TokenUsage } from './token-usage.ts';

/**
 * How a batch's lines run, shown on the batch object as the `execution` extension field:
 * `native` lines go through the upstream's Batch API at its batch price, `realtime` ones through
 * its real-time endpoint; `mixed` when the batch's upstreams chose differently. `reason` says why.
 */
export interface BatchExecution {
  mode: 'realtime' | 'native' | 'mixed';
  reason: string;
  /**
   * Lines answered through the upstream's Batch API, i.e. at the batch price: what cost
   * reporting (issue 13) charges at the batch discount. Grows as sub-batches are merged.
   */
  native_lines?: number;
  /**
   * Token usage of those lines (part of the batch's `usage`): priced at the batch rate, the rest
   * of `usage` at the standard rate; the saving is this usage's standard minus batch cost.
   */
  native_usage?: TokenUsage;
  /** Lines of a native batch moved to real-time calls because its deadline was at risk (auto). */
  fallback_lines?: number;
  /**
   * While sub-batches run upstream: their lines and the upstream's live counts, summed (merged
   * lines move into `request_counts` when each sub-batch ends; absent when none is open).
   */
  upstream_progress?: UpstreamProgress;
}

export interface UpstreamProgress {
  sub_batches: number;
  lines: number;
  completed: number;
  failed: number;
}
