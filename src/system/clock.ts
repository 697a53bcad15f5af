/** The process clock: the real implementation of proxier/clock.ts' Clock seam. */
import { timerDelay, type Clock } from '../../proxier/clock.ts';

/**
 * now() is monotonic (CLOCK_MONOTONIC through performance.now(), from about the epoch time the process started): an
 * NTP step, a VM restored from a snapshot or `date -s` moves no deadline, as upstream's time.Since ignores them. Its
 * readings are shown as wall-clock times through epochMs: how long ago they were, back from Date.now().
 */
const monotonic = (): number => performance.timeOrigin + performance.now();

export const realClock: Clock = {
  now: monotonic,
  epochMs: (reading) => Date.now() - (monotonic() - reading),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, timerDelay(ms)),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof globalThis.setTimeout>),
};
