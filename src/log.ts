/**
 * The real Logger (proxier/log.ts): structured JSON logs through pino. -v maps
 * to levels as klog users expect: 0-1 info, 2-3 debug, 4+ trace.
 */
import { pino } from 'pino';
import type { Logger } from '../proxier/log.ts';

export function levelForVerbosity(v: number): pino.Level {
  if (v >= 4) return 'trace';
  if (v >= 2) return 'debug';
  return 'info';
}

export interface LogOptions {
  readonly verbosity: number;
  /** File descriptor to write to: 1 (stdout, the agent) or 2 (stderr, commands whose stdout is data). */
  readonly fd?: 1 | 2;
  /** Tests pass a stream to read logs back. */
  readonly stream?: pino.DestinationStream;
}

export function createLogger(opts: LogOptions): Logger {
  const level = levelForVerbosity(opts.verbosity);
  const dest = opts.stream ?? pino.destination({ fd: opts.fd ?? 1, sync: true });
  return pino({ level, base: { component: 'kube-proxy-ts' }, timestamp: pino.stdTimeFunctions.isoTime }, dest);
}
