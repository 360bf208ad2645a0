import { z } from 'zod';
import {
  BATCH_MODES,
  type BatchMode,
  type UpstreamBatchSettings,
} from '../domain/batch-execution.ts';

export type { UpstreamBatchSettings };

export const DEFAULT_BATCH_SETTINGS: UpstreamBatchSettings = {
  mode: 'auto',
  pollMs: 30_000,
  maxPollMs: 300_000,
  maxLines: 50_000,
  maxBytes: 200 * 1024 * 1024,
  queueTokens: {},
  fallbackMarginMs: 3_600_000,
  deleteFiles: true,
};

const positiveInt = z.coerce.number().int().positive();

/** The config file's per-upstream batch fields. */
export const batchFileFields = {
  batchMode: z.enum(BATCH_MODES).optional(),
  batchPollMs: positiveInt.optional(),
  batchMaxPollMs: positiveInt.optional(),
  batchMaxLines: positiveInt.optional(),
  batchMaxBytes: positiveInt.optional(),
  batchQueueTokens: z.record(z.string(), positiveInt).optional(),
  batchFallbackMarginMs: z.coerce.number().int().min(0).optional(),
  batchDeleteFiles: z.boolean().optional(),
};

type FileFields = { [K in keyof typeof batchFileFields]?: z.infer<(typeof batchFileFields)[K]> };

export function batchSettingsFromFile(u: FileFields): Partial<UpstreamBatchSettings> {
  return dropUndefined({
    mode: u.batchMode,
    pollMs: u.batchPollMs,
    maxPollMs: u.batchMaxPollMs,
    maxLines: u.batchMaxLines,
    maxBytes: u.batchMaxBytes,
    queueTokens: u.batchQueueTokens,
    fallbackMarginMs: u.batchFallbackMarginMs,
    deleteFiles: u.batchDeleteFiles,
  });
}

/** OPENBATCH_UPSTREAM_BATCH_* for the upstream from the environment. */
export function batchSettingsFromEnv(
  env: Record<string, string | undefined>,
): Partial<UpstreamBatchSettings> {
  const int = (name: string): number | undefined => {
    const value = env[name];
    if (value === undefined) return undefined;
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0)
      throw new Error(`${name}: expected a non-negative integer, got '${value}'`);
    return n;
  };
  const mode = env.OPENBATCH_UPSTREAM_BATCH_MODE;
  if (mode !== undefined && !(BATCH_MODES as readonly string[]).includes(mode))
    throw new Error(`OPENBATCH_UPSTREAM_BATCH_MODE: expected ${BATCH_MODES.join(', ')}`);
  const deleteFiles = env.OPENBATCH_UPSTREAM_BATCH_DELETE_FILES;
  return dropUndefined({
    mode: mode as BatchMode | undefined,
    pollMs: int('OPENBATCH_UPSTREAM_BATCH_POLL_MS'),
    maxPollMs: int('OPENBATCH_UPSTREAM_BATCH_MAX_POLL_MS'),
    maxLines: int('OPENBATCH_UPSTREAM_BATCH_MAX_LINES'),
    maxBytes: int('OPENBATCH_UPSTREAM_BATCH_MAX_BYTES'),
    queueTokens: parseQueueTokens(env.OPENBATCH_UPSTREAM_BATCH_QUEUE_TOKENS),
    fallbackMarginMs: int('OPENBATCH_UPSTREAM_BATCH_FALLBACK_MARGIN_MS'),
    deleteFiles: deleteFiles === undefined ? undefined : deleteFiles !== '0',
  });
}

/** `gpt-4o=90000,gpt-4o-mini=2000000`. */
function parseQueueTokens(value: string | undefined): Record<string, number> | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const limits: Record<string, number> = {};
  for (const entry of value.split(',')) {
    const at = entry.lastIndexOf('=');
    const model = entry.slice(0, at).trim();
    const n = Number(entry.slice(at + 1));
    if (at <= 0 || !Number.isInteger(n) || n <= 0)
      throw new Error(
        `OPENBATCH_UPSTREAM_BATCH_QUEUE_TOKENS: expected model=tokens,…, got '${entry}'`,
      );
    limits[model] = n;
  }
  return limits;
}

export function resolveBatchSettings(
  input: Partial<UpstreamBatchSettings> | undefined,
): UpstreamBatchSettings {
  const settings = { ...DEFAULT_BATCH_SETTINGS, ...input };
  return { ...settings, maxPollMs: Math.max(settings.maxPollMs, settings.pollMs) };
}

function dropUndefined<T extends object>(
  value: T,
): Partial<{ [K in keyof T]: Exclude<T[K], undefined> }> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<{
    [K in keyof T]: Exclude<T[K], undefined>;
  }>;
}
