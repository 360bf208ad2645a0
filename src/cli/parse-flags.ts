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
