import { pino } from 'pino';

/** What every Flotilla component logs through: structured, one JSON object per line. */
export interface Logger {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
  child(fields: Record<string, unknown>): Logger;
}

/** A JSON-lines logger to stderr (pino), or a silent one. */
export function createLogger(name: string, level: 'info' | 'warn' | 'error' | 'silent' = 'info'): Logger {
  return pino({ name, level, base: { pid: process.pid } }, pino.destination(2));
}

export const silentLogger: Logger = createLogger('silent', 'silent');
