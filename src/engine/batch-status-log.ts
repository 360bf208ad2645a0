import type { BatchError } from '../protocol/batch.ts';
import type { Logger } from '../lib/logger.ts';
import type { Store } from '../store/store.ts';

/** Long enough to say what is wrong with a line, short enough never to carry a whole line. */
const MESSAGE_CHARS = 300;

function firstError(errors: readonly BatchError[]): Record<string, unknown> | null {
  const e = errors[0];
  if (!e) return null;
  return {
    code: e.code,
    line: e.line,
    param: e.param,
    message: e.message.slice(0, MESSAGE_CHARS),
  };
}

/**
 * The store, logging one `batch.status` line for every status change the engine makes
 * (validating → in_progress or failed, finalizing, completed/expired/cancelled), wherever in the
 * engine it is made. A validation failure carries its first error. Cancels are logged by the
 * route that takes them (with the request id); the rest of the store passes through unchanged.
 */
export function withStatusLog(store: Store, logger: Logger): Store {
  const log = (batch_id: string, status: string, fields: Record<string, unknown> = {}): void =>
    logger.info({ event: 'batch.status', batch_id, status, ...fields }, `batch ${status}`);
  const wrapped: Partial<Store> = {
    markInProgress: async (batchId, total, model, nowMs) => {
      const started = await store.markInProgress(batchId, total, model, nowMs);
      if (started) log(batchId, 'in_progress', { total, model });
      return started;
    },
    markFailed: async (batchId, errors, nowMs) => {
      await store.markFailed(batchId, errors, nowMs);
      logger.warn(
        {
          event: 'batch.status',
          batch_id: batchId,
          status: 'failed',
          errors: errors.length,
          first_error: firstError(errors),
        },
        'batch failed validation',
      );
    },
    markFinalizing: async (batchId, nowMs) => {
      await store.markFinalizing(batchId, nowMs);
      log(batchId, 'finalizing');
    },
    stopBatchEarly: async (batchId, code, errors, nowMs) => {
      const stopped = await store.stopBatchEarly(batchId, code, errors, nowMs);
      if (stopped)
        logger.warn(
          {
            event: 'batch.status',
            batch_id: batchId,
            status: 'cancelling',
            stop_code: code,
            first_error: firstError(errors),
          },
          'batch stopped early',
        );
      return stopped;
    },
    completeBatch: async (batchId, status, files, nowMs) => {
      await store.completeBatch(batchId, status, files, nowMs);
      log(batchId, status, {
        output_file_id: files.output?.id ?? null,
        error_file_id: files.error?.id ?? null,
      });
    },
  };
  return new Proxy(store, {
    get(target, prop) {
      if (Object.hasOwn(wrapped, prop)) return wrapped[prop as keyof Store];
      const value: unknown = Reflect.get(target, prop, target);
      // Methods run on the real store (a class-based store keeps its private fields).
      return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
    },
  });
}
