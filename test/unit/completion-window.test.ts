import { describe, it, expect } from 'vitest';
import { parseCompletionWindowMs } from '../../src/domain/completion-window.ts';
import { AppError } from '../../src/domain/app-error.ts';

function rejection(value: unknown): AppError {
  try {
    parseCompletionWindowMs(value);
  } catch (err) {
    if (err instanceof AppError) return err;
    throw err;
  }
  throw new Error(`${JSON.stringify(value)} was accepted`);
}

describe('parseCompletionWindowMs', () => {
  it.each([
    ['24h', 86_400_000],
    ['1h', 3_600_000],
    ['1h30m', 5_400_000],
    ['30m', 1_800_000],
    ['10s', 10_000],
    ['1m', 60_000],
    ['2h0m5s', 7_205_000],
    ['0h0m10s', 10_000],
    ['167h59m60s', 168 * 3_600_000],
    ['168h', 604_800_000],
  ])('accepts %s as %d ms', (value, ms) => {
    expect(parseCompletionWindowMs(value)).toBe(ms);
  });

  it.each([
    '9s',
    '0s',
    '0h',
    '169h',
    '168h0m1s',
    '',
    'abc',
    '5s',
    '24H',
    '1d',
    '-1h',
    '1.5h',
    'h',
    '24',
    '1s1h',
    'm30',
  ])('rejects %j', (value) => {
    const err = rejection(value);
    expect(err.code).toBe('invalid_request');
    expect(err.param).toBe('completion_window');
    expect(err.wireCode).toBe('invalid_value');
    expect(err.message).toContain(`Invalid value: '${value}'.`);
    expect(err.message).toContain("'24h'");
  });

  it.each([24, null, undefined, { h: 24 }])('rejects the non-string %j', (value) => {
    expect(rejection(value).param).toBe('completion_window');
  });
});
