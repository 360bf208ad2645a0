import type { UpstreamBatchSettings } from '../../domain/batch-execution.ts';
import type { BatchApi } from '../../providers/provider.ts';

/** One upstream's batch settings and its Batch API client (compose builds them). */
export interface NativeUpstream {
  settings: UpstreamBatchSettings;
  api: BatchApi;
}

/** Chunks of an upstream that go through its Batch API are queued under this name instead. */
export function nativeQueue(upstream: string): string {
  return `${upstream}#native`;
}
