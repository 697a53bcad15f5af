/** A file of its own that logs, for --vmodule's per-file verbosity (src/log.test.ts). */
import type { Logger } from '../proxier/log.ts';

export function logFromHere(log: Logger, msg: string): void {
  log.debug(msg);
}
