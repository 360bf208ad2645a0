export type { BatchExecution } from '../protocol/batch-execution.ts';

/** How an upstream runs batch lines: its real-time endpoint, its own Batch API, or either. */
export const BATCH_MODES = ['realtime', 'native', 'auto'] as const;
export type BatchMode = (typeof BATCH_MODES)[number];
