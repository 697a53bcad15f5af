/**
 * The time seam: everything that waits or measures time takes a Clock, so
 * tests can drive timers by hand. The process clock is src/system/clock.ts'
 * realClock; ManualClock here is the deterministic one for tests (time moves
 * only through advance(), due timers fire in due-time order, ties in creation
 * order).
 */

export interface Clock {
  /**
   * Milliseconds from a fixed origin, for intervals and deadlines: only differences matter. The process clock's is
   * monotonic, as Go's time.Since and Sub are, so a step of the wall clock changes no interval.
   */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  /** The wall-clock time (ms since the epoch) of a reading of now(), for display; without it, readings are epoch times. */
  epochMs?(reading: number): number;
}

/** The longest delay Node's timers hold, 2^31 - 1 ms (~24.8 days): a longer one fires after 1 ms (TimeoutOverflowWarning). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A delay Node's timers keep. Go's timers take any duration, so upstream takes a `--iptables-sync-period=720h` or a
 * `--udp-timeout=800h`; here such a timer wakes at ~24.8 days instead, and its owner finds its deadline not reached
 * (and waits again) or does early what was due later.
 */
export const timerDelay = (ms: number): number => Math.min(ms, MAX_TIMER_MS);

/** A reading of clock.now() as the wall-clock time it was taken at (metrics' timestamps, /healthz, /debug). */
export function epochMs(clock: Pick<Clock, 'epochMs'>, reading: number): number {
  return clock.epochMs ? clock.epochMs(reading) : reading;
}

/**
 * Runs `fn` every `ms` on the clock, the next run scheduled only after the
 * previous one (async or not) has finished; returns a stop function.
 */
export function every(clock: Clock, ms: number, fn: () => unknown): () => void {
  let timer: unknown = null;
  let stopped = false;
  const tick = (): void => {
    timer = clock.setTimeout(async () => {
      if (stopped) return;
      await fn();
      if (!stopped) tick();
    }, ms);
  };
  tick();
  return () => {
    stopped = true;
    if (timer !== null) clock.clearTimeout(timer);
  };
}

interface ManualTimer {
  readonly id: number;
  readonly due: number;
  readonly fn: () => void;
}

export class ManualClock implements Clock {
  private time: number;
  private nextId = 1;
  private timers: ManualTimer[] = [];

  constructor(start = 0) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const timer = { id: this.nextId++, due: this.time + Math.max(0, ms), fn };
    this.timers.push(timer);
    return timer.id;
  }

  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }

  /** Number of timers not yet fired or cleared. */
  pending(): number {
    return this.timers.length;
  }

  /** Due time of the earliest pending timer (Infinity when none). */
  nextDue(): number {
    return this.timers.reduce((min, t) => Math.min(min, t.due), Infinity);
  }

  /**
   * Moves time forward by ms, firing every timer that becomes due (including
   * timers set by fired callbacks) at its own due time.
   */
  advance(ms: number): void {
    if (ms < 0) throw new Error(`ManualClock.advance: negative duration ${ms}`);
    const end = this.time + ms;
    for (;;) {
      const next = this.earliestDue(end);
      if (!next) break;
      this.timers = this.timers.filter((t) => t !== next);
      this.time = next.due;
      next.fn();
    }
    this.time = end;
  }

  private earliestDue(limit: number): ManualTimer | null {
    let best: ManualTimer | null = null;
    for (const t of this.timers) {
      if (t.due <= limit && (!best || t.due < best.due || (t.due === best.due && t.id < best.id))) best = t;
    }
    return best;
  }
}
