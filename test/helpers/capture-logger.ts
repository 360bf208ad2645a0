import type { Logger } from '../../src/lib/logger.ts';

/** One captured log entry: level, message and fields (scopes merged in). */
export interface LogEntry {
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
  fields: Record<string, unknown>;
}

/** A Logger that keeps every entry in `entries`, for tests that assert on log lines. */
export function captureLogger(): Logger & { entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const make = (scope: Record<string, unknown>): Logger => {
    const at =
      (level: LogEntry['level']) =>
      (fields: Record<string, unknown>, message: string): void => {
        entries.push({ level, message, fields: { ...scope, ...fields } });
      };
    return {
      debug: at('debug'),
      info: at('info'),
      warn: at('warn'),
      error: at('error'),
      scope: (fields) => make({ ...scope, ...fields }),
    };
  };
  return Object.assign(make({}), { entries });
}
