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
  /** Lines of a native batch moved to real-time calls because its deadline was at risk (auto). */
  fallback_lines?: number;
}
