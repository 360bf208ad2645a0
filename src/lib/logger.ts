import pino from 'pino';
import type { Logger as PinoLogger } from 'pino';

/** The logging surface every component takes; no module imports a logger singleton. */
export interface Logger {
  debug(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
  /** A child logger that adds `fields` to every entry (e.g. `{ batchId }`). */
  scope(fields: Record<string, unknown>): Logger;
}

/** Key names whose values are never written, wherever they appear in a log entry. */
const REDACT_PATHS = [
  'apiKey',
  '*.apiKey',
  '*.*.apiKey',
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'key',
  '*.key',
];

/** A pino-backed logger writing JSON lines to stderr; secrets are redacted by key name. */
export function createLogger(level: string = 'info'): Logger {
  return wrap(
    pino({ level, redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, pino.destination(2)),
  );
}

function wrap(base: PinoLogger): Logger {
  return {
    debug: (fields, message) => base.debug(fields, message),
    info: (fields, message) => base.info(fields, message),
    warn: (fields, message) => base.warn(fields, message),
    error: (fields, message) => base.error(fields, message),
    scope: (fields) => wrap(base.child(fields)),
  };
}

/** A logger that drops everything (tests, library use). */
export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  scope: () => silentLogger,
};
