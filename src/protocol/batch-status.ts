import type { BatchStatus } from './batch.ts';

/** Statuses a batch never leaves (spec §4.3): its counts, usage and files are final. */
export const TERMINAL_BATCH_STATUSES = [
  'completed',
  'failed',
  'expired',
  'cancelled',
] as const satisfies readonly BatchStatus[];

/**
 * True for a batch status that will not change any more. Takes any string: clients read the
 * status off the wire (the `openai` package types it as its own union).
 */
export function isTerminalStatus(status: string): boolean {
  return (TERMINAL_BATCH_STATUSES as readonly string[]).includes(status);
}
