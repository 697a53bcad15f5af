/** The process clock: the real implementation of proxier/clock.ts' Clock seam. */
import type { Clock } from '../../proxier/clock.ts';

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof globalThis.setTimeout>),
};
