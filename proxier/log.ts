/**
 * The logger seam: what the modes and the proxier log through. pino's Logger
 * satisfies it (src/log.ts makes the real one); silentLogger drops
 * everything (tests, benchmarks). One set of field names everywhere:
 * component, service, chain, ipFamily, err.
 */

export interface LogFn {
  (fields: object, message?: string): void;
  (message: string): void;
}

export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  /** A logger that adds these fields to every line. */
  child(fields: Record<string, unknown>): Logger;
}

const drop: LogFn = () => undefined;

export function silentLogger(): Logger {
  const log: Logger = { debug: drop, info: drop, warn: drop, error: drop, child: () => log };
  return log;
}
