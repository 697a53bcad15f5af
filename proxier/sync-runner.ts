/**
 * A bounded-frequency runner with upstream's semantics (pkg/proxy/runner):
 * - run() never blocks; requests made while a sync runs or during the
 *   cool-down coalesce into one;
 * - at least minInterval between the end of one sync and the start of the next;
 * - a sync at least every maxInterval, even without requests;
 * - a failed sync is retried within retryInterval (sooner if requested).
 * Only one sync runs at a time. The clock is injected.
 */
import type { Clock } from './clock.ts';

/** Why a sync runs: a requested change, the periodic resync, or a retry after a failure. */
export type SyncTrigger = 'change' | 'periodic' | 'retry';

export interface SyncRunnerOptions {
  readonly fn: (trigger: SyncTrigger) => Promise<void>;
  readonly minIntervalMs: number;
  readonly maxIntervalMs: number;
  readonly retryIntervalMs: number;
  readonly clock: Clock;
  /** Called with the error of a failed sync (the runner has already scheduled the retry). */
  readonly onError?: (err: unknown) => void;
}

export class SyncRunner {
  private readonly o: SyncRunnerOptions;
  private timer: unknown = null;
  private timerDue = Infinity;
  private running: Promise<void> | null = null;
  private requested = false;
  private lastStart = 0;
  private lastEnd = -Infinity;
  private retryAt = Infinity;
  private stopped = true;

  constructor(options: SyncRunnerOptions) {
    if (options.maxIntervalMs < options.minIntervalMs) throw new Error('SyncRunner: maxInterval must not be below minInterval');
    this.o = options;
  }

  /** Starts the periodic timer; the first sync happens on the first run() or after maxInterval. */
  start(): void {
    this.stopped = false;
    this.lastStart = this.o.clock.now();
    this.reschedule();
  }

  /** Requests a sync as soon as the min interval allows. */
  run(): void {
    this.requested = true;
    this.reschedule();
  }

  /** Stops timers and waits for a sync in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.clearTimer();
    await this.running;
  }

  /** Resolves when no sync is running (for tests and orderly shutdown). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private clearTimer(): void {
    if (this.timer !== null) this.o.clock.clearTimeout(this.timer);
    this.timer = null;
    this.timerDue = Infinity;
  }

  private reschedule(): void {
    if (this.stopped || this.running) return;
    const now = this.o.clock.now();
    const due = Math.min(
      this.requested ? Math.max(now, this.lastEnd + this.o.minIntervalMs) : Infinity,
      this.lastStart + this.o.maxIntervalMs,
      this.retryAt,
    );
    if (due === this.timerDue && this.timer !== null) return;
    this.clearTimer();
    this.timerDue = due;
    this.timer = this.o.clock.setTimeout(() => this.tick(), Math.max(0, due - now));
  }

  private tick(): void {
    this.timer = null;
    this.timerDue = Infinity;
    if (this.stopped || this.running) return;
    const now = this.o.clock.now();
    const trigger: SyncTrigger = this.requested ? 'change' : now >= this.retryAt ? 'retry' : 'periodic';
    this.requested = false;
    this.retryAt = Infinity;
    this.lastStart = now;
    this.running = this.o
      .fn(trigger)
      .catch((err: unknown) => {
        this.retryAt = this.o.clock.now() + this.o.retryIntervalMs;
        try {
          this.o.onError?.(err);
        } catch {
          // A throwing error handler must not stop the runner.
        }
      })
      .finally(() => {
        this.lastEnd = this.o.clock.now();
        this.running = null;
        this.reschedule();
      });
  }
}
