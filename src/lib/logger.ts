import { createRequire } from 'node:module';
import pino from 'pino';
import type { DestinationStream, Logger as PinoLogger } from 'pino';

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

/**
 * A pino-backed logger writing to stderr: JSON lines, or (`pretty`) one coloured line per entry
 * for a person at a terminal. Secrets are redacted by key name in both, before formatting.
 */
export function createLogger(level: string = 'info', format: 'json' | 'pretty' = 'json'): Logger {
  const destination = format === 'pretty' ? prettyStream() : pino.destination(2);
  return wrap(pino({ level, redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, destination));
}

/**
 * pino-pretty as a stream in this thread (no transport worker), loaded only when asked for, so
 * JSON logging never pays for it.
 */
function prettyStream(): DestinationStream {
  const require = createRequire(import.meta.url);
  const pretty = require('pino-pretty') as (opts: Record<string, unknown>) => DestinationStream;
  return pretty({
    destination: 2,
    sync: true,
    colorize: process.stderr.isTTY,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname',
  });
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
