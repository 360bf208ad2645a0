import { isBatchEndpoint, type BatchEndpoint } from '../protocol/endpoints.ts';
import { UsageError } from './command-kit.ts';

/** A positive integer flag (commander hands strings); `fallback` when absent. */
export function parseCount(
  flag: string,
  value: string | number | undefined,
  fallback: number,
): number {
  if (value === undefined) return fallback;
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isInteger(n) || n <= 0)
    throw new UsageError(`${flag}: expected a positive integer, got '${value}'`);
  return n;
}

/** An optional positive integer flag. */
export function parseOptionalCount(
  flag: string,
  value: string | number | undefined,
): number | undefined {
  return value === undefined ? undefined : parseCount(flag, value, 0);
}

/** --endpoint: one of the Batch API's endpoints, or undefined (each line's own url). */
export function parseEndpoint(value: string | undefined): BatchEndpoint | undefined {
  if (value === undefined) return undefined;
  if (!isBatchEndpoint(value)) throw new UsageError(`--endpoint: not a batch endpoint: ${value}`);
  return value;
}
