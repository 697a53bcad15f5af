/**
 * Keeps one informer alive. client-node's ListWatch gives up for good after
 * a failed list, a watch answered with an HTTP error, or a broken
 * connection; and it can hang silently on a half-open TCP connection. The
 * Supervisor starts a run (one informer instance) through a factory; the run
 * reports activity and failure through a RunControl. On failure, or when no
 * activity was seen for staleAfterMs (watchdog), the run is stopped and a new
 * one started after a capped exponential backoff with jitter. Two back-offs,
 * each with its own streak: failures `answered` accepts (the API server
 * answered them, so each retry costs it work) wait answeredBackoff's delays,
 * the others backoff's; a streak of answered failures does not start at the
 * length an outage's refused connections reached, nor the reverse. Both start
 * over once no failure happened for their resetAfterMs (as client-go's
 * reflector starts its one back-off over). Reports from a run that has been
 * replaced are ignored.
 * Two ways to skip the wait: retryNow() (another informer just reached the
 * API server, so it is back) and retryAtOnce (a failure that a retry may fix
 * right away, e.g. a 401 after the token file was rotated; once per backoff
 * streak, so it can never spin). And two ways to wait longer: delayFor gives
 * a failure that a retry soon will not fix its own delay (a resource the API
 * server does not serve), and waitAtLeast sets a floor under any delay (the
 * API server's Retry-After).
 * A run may also retry a step itself instead of failing (RunControl.backOff: a
 * watch refused while the API server is down is asked again, not the whole
 * informer restarted), waiting the same back-off, on the same streak, as
 * client-go's reflector shares one backoff manager between its watch retries
 * and its ListAndWatch restarts; retryNow() ends such a wait too.
 */
import type { Clock } from '../../proxier/clock.ts';
import { realClock } from '../system/clock.ts';

export interface BackoffOptions {
  /** First delay (default 1 s). */
  readonly initialMs: number;
  /** Cap (default 30 s). */
  readonly maxMs: number;
  /** Growth per consecutive failure (default 2). */
  readonly factor: number;
  /**
   * Random part of each delay d, as a fraction of it (default 0.2): taken off, delays in [(1-jitter)·d, d] (jitter at
   * most 1); or, with jitterAdds, added: delays in [d, (1+jitter)·d), as client-go's wait.Jitter adds it.
   */
  readonly jitter: number;
  /** The jitter is added to the delay, not taken off (default false). */
  readonly jitterAdds: boolean;
  /** A failure this long after the previous one starts the backoff over (default 2 min). */
  readonly resetAfterMs: number;
  /** Random source in [0, 1) (tests pin it). */
  readonly random: () => number;
}

export const DEFAULT_BACKOFF: BackoffOptions = {
  initialMs: 1000,
  maxMs: 30_000,
  factor: 2,
  jitter: 0.2,
  jitterAdds: false,
  resetAfterMs: 120_000,
  random: Math.random,
};

/** Delay before restart number `attempt` (0-based) of a streak. */
export function backoffDelay(attempt: number, o: BackoffOptions): number {
  const base = Math.min(o.maxMs, o.initialMs * o.factor ** attempt);
  if (o.jitterAdds) return Math.round(base * (1 + Math.max(0, o.jitter) * o.random()));
  const jitter = Math.min(1, Math.max(0, o.jitter));
  return Math.round(base * (1 - jitter * o.random()));
}

export interface RunControl {
  /** Anything showing the run is alive: a connect, an event, a bookmark. */
  activity(): void;
  /** The run cannot recover by itself; it will be stopped and replaced. */
  failed(err: unknown): void;
  /** Aborted once the run has been replaced or the supervisor stopped (abort pending requests with it). */
  readonly signal: AbortSignal;
  /**
   * A step of the run failed and the run will try it again itself: resolves true after the delay a restart for this
   * failure would wait (or sooner, on retryNow()), false once the run has been replaced or the supervisor stopped.
   */
  backOff(err: unknown): Promise<boolean>;
}

export interface Run {
  stop(): Promise<void> | void;
}

export interface SupervisorOptions {
  /** For messages ("Service informer"). */
  readonly name: string;
  /** Starts a run; resolves once its first attempt is under way or done. A throw counts as a failure. */
  readonly start: (control: RunControl) => Promise<Run> | Run;
  readonly clock?: Clock;
  readonly backoff?: Partial<BackoffOptions>;
  /** The failures that wait answeredBackoff's delays, on a streak of their own, instead of backoff's (default: none). */
  readonly answered?: (err: unknown) => boolean;
  /** The back-off of the failures `answered` accepts (default DEFAULT_BACKOFF). */
  readonly answeredBackoff?: Partial<BackoffOptions>;
  /** Watchdog: restart after this long without activity (default 5 min; 0 disables). */
  readonly staleAfterMs?: number;
  /** A run failed (or went stale) and a new one starts in delayMs ('restart'), or a run retries a step in delayMs ('retry'). */
  readonly onRestart?: (err: unknown, delayMs: number, how: 'restart' | 'retry') => void;
  /** Failures worth one immediate retry (without backoff) per backoff streak. */
  readonly retryAtOnce?: (err: unknown) => boolean;
  /** The delay before the next run after this failure, instead of the backoff's; null: the backoff's. */
  readonly delayFor?: (err: unknown) => number | null;
  /** The least delay this failure asks for (an API server's Retry-After), whatever the backoff says; null: none. */
  readonly waitAtLeast?: (err: unknown) => number | null;
}

export class Supervisor {
  private readonly o: SupervisorOptions;
  private readonly clock: Clock;
  private readonly backoff: BackoffOptions;
  private readonly answeredBackoff: BackoffOptions;
  private readonly staleAfterMs: number;
  private generation = 0;
  private run: Run | null = null;
  private launching: Promise<void> | null = null;
  private abort: AbortController | null = null;
  private restartTimer: unknown = null;
  /** A run's backOff() in progress: ends it (true: go on; false: the run is gone). */
  private waiting: ((go: boolean) => void) | null = null;
  private watchdogTimer: unknown = null;
  private lastActivity = 0;
  /** The streaks: failures so far of each back-off. */
  private attempt = 0;
  private answeredAttempt = 0;
  private lastFailureAt = -Infinity;
  private retriedAtOnce = false;
  private stopped = true;
  private restartCount = 0;

  constructor(options: SupervisorOptions) {
    this.o = options;
    this.clock = options.clock ?? realClock;
    this.backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.answeredBackoff = { ...DEFAULT_BACKOFF, ...options.answeredBackoff };
    this.staleAfterMs = options.staleAfterMs ?? 300_000;
  }

  /** Restarts so far. */
  get restarts(): number {
    return this.restartCount;
  }

  /** Starts the first run; resolves when its start() has returned (success or not). */
  async start(): Promise<void> {
    if (!this.stopped) throw new Error(`${this.o.name}: supervisor already started`);
    this.stopped = false;
    await this.launch();
  }

  /** Stops the current run and any pending restart; no run is started afterwards. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.generation++;
    this.clearTimers();
    this.abort?.abort();
    await this.launching;
    const run = this.run;
    this.run = null;
    if (run) await this.stopRun(run);
  }

  /** If a restart or a run's retry is waiting for its backoff, goes now (true); otherwise does nothing (false). */
  retryNow(): boolean {
    if (this.stopped) return false;
    if (this.waiting) {
      this.waiting(true);
      return true;
    }
    if (this.restartTimer === null) return false;
    this.clock.clearTimeout(this.restartTimer);
    this.restartTimer = null;
    void this.launch();
    return true;
  }

  private launch(): Promise<void> {
    const p = this.doLaunch().finally(() => {
      if (this.launching === p) this.launching = null;
    });
    this.launching = p;
    return p;
  }

  private async doLaunch(): Promise<void> {
    const gen = ++this.generation;
    const abort = new AbortController();
    this.abort = abort;
    this.lastActivity = this.clock.now();
    this.armWatchdog(gen);
    const control: RunControl = {
      signal: abort.signal,
      activity: () => {
        if (gen === this.generation) this.lastActivity = this.clock.now();
      },
      failed: (err) => this.fail(gen, err),
      backOff: (err) => this.backOff(gen, err),
    };
    let run: Run;
    try {
      run = await this.o.start(control);
    } catch (err) {
      this.fail(gen, err);
      return;
    }
    if (gen !== this.generation) {
      await this.stopRun(run);
      return;
    }
    this.run = run;
  }

  private fail(gen: number, err: unknown): void {
    if (gen !== this.generation || this.stopped) return;
    this.generation++;
    this.clearTimers();
    this.abort?.abort();
    const run = this.run;
    this.run = null;
    if (run) void this.stopRun(run);
    const delay = this.nextDelay(err);
    this.restartCount++;
    this.report(err, delay, 'restart');
    this.restartTimer = this.clock.setTimeout(() => {
      this.restartTimer = null;
      if (!this.stopped) void this.launch();
    }, delay);
  }

  private backOff(gen: number, err: unknown): Promise<boolean> {
    if (gen !== this.generation || this.stopped) return Promise.resolve(false);
    this.waiting?.(false);
    const delay = this.nextDelay(err);
    this.report(err, delay, 'retry');
    // Waiting is what the run is meant to do: the watchdog counts it as activity.
    this.lastActivity = this.clock.now();
    return new Promise<boolean>((resolve) => {
      const end = (go: boolean): void => {
        if (this.waiting !== end) return;
        this.waiting = null;
        this.clock.clearTimeout(timer);
        const live = go && gen === this.generation && !this.stopped;
        if (live) this.lastActivity = this.clock.now();
        resolve(live);
      };
      const timer = this.clock.setTimeout(() => end(true), delay);
      this.waiting = end;
    });
  }

  /** The delay before the next attempt after this failure, on the current back-off streak (which it advances). */
  private nextDelay(err: unknown): number {
    const now = this.clock.now();
    if (now - this.lastFailureAt >= this.backoff.resetAfterMs) {
      this.attempt = 0;
      this.retriedAtOnce = false;
    }
    if (now - this.lastFailureAt >= this.answeredBackoff.resetAfterMs) this.answeredAttempt = 0;
    this.lastFailureAt = now;
    let delay: number;
    const own = this.delayFor(err);
    if (own !== null) delay = own;
    else if (!this.retriedAtOnce && this.retryAtOnce(err)) {
      this.retriedAtOnce = true;
      delay = 0;
    } else if (this.isAnswered(err)) delay = backoffDelay(this.answeredAttempt++, this.answeredBackoff);
    else delay = backoffDelay(this.attempt++, this.backoff);
    return Math.max(delay, this.waitAtLeast(err));
  }

  private report(err: unknown, delay: number, how: 'restart' | 'retry'): void {
    try {
      this.o.onRestart?.(err, delay, how);
    } catch {
      // a reporting hook must not stop the restart
    }
  }

  private delayFor(err: unknown): number | null {
    try {
      return this.o.delayFor?.(err) ?? null;
    } catch {
      return null;
    }
  }

  private waitAtLeast(err: unknown): number {
    try {
      return this.o.waitAtLeast?.(err) ?? 0;
    } catch {
      return 0;
    }
  }

  private isAnswered(err: unknown): boolean {
    try {
      return this.o.answered?.(err) ?? false;
    } catch {
      return false;
    }
  }

  private retryAtOnce(err: unknown): boolean {
    try {
      return this.o.retryAtOnce?.(err) ?? false;
    } catch {
      return false;
    }
  }

  private armWatchdog(gen: number): void {
    if (this.staleAfterMs <= 0) return;
    if (this.watchdogTimer !== null) this.clock.clearTimeout(this.watchdogTimer);
    const wait = Math.max(0, this.lastActivity + this.staleAfterMs - this.clock.now());
    this.watchdogTimer = this.clock.setTimeout(() => {
      this.watchdogTimer = null;
      if (gen !== this.generation || this.stopped) return;
      const idle = this.clock.now() - this.lastActivity;
      // A timeout (ETIMEDOUT): nothing was heard, as from a connection whose peer is gone.
      if (idle >= this.staleAfterMs)
        this.fail(gen, Object.assign(new Error(`${this.o.name}: no connect or event for ${idle} ms (watchdog)`), { code: 'ETIMEDOUT' }));
      else this.armWatchdog(gen);
    }, wait);
  }

  private clearTimers(): void {
    this.waiting?.(false);
    if (this.restartTimer !== null) this.clock.clearTimeout(this.restartTimer);
    if (this.watchdogTimer !== null) this.clock.clearTimeout(this.watchdogTimer);
    this.restartTimer = null;
    this.watchdogTimer = null;
  }

  private async stopRun(run: Run): Promise<void> {
    try {
      await run.stop();
    } catch {
      // the run is being discarded either way
    }
  }
}
