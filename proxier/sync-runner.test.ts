import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Clock } from './clock.ts';
import { SyncRunner } from './sync-runner.ts';

const clock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

describe('SyncRunner', () => {
  let starts: number[];
  let triggers: string[];
  let fail: boolean;
  let runner: SyncRunner;
  let errors: unknown[];
  const make = (min: number, max: number, retry: number, durationMs = 0) => {
    runner = new SyncRunner({
      clock,
      minIntervalMs: min,
      maxIntervalMs: max,
      retryIntervalMs: retry,
      onError: (e) => errors.push(e),
      fn: async (trigger) => {
        starts.push(Date.now());
        triggers.push(trigger);
        if (durationMs) await new Promise((r) => setTimeout(r, durationMs));
        if (fail) throw new Error('restore failed');
      },
    });
    runner.start();
  };
  beforeEach(() => {
    vi.useFakeTimers({ now: 0 });
    starts = [];
    triggers = [];
    fail = false;
    errors = [];
  });
  afterEach(async () => {
    await runner.stop();
    vi.useRealTimers();
  });

  it('runs at once, then coalesces requests during the cool-down into one run', async () => {
    make(1000, 3_600_000, 30_000);
    runner.run();
    await vi.advanceTimersByTimeAsync(0);
    expect(starts).toEqual([0]);
    for (let i = 0; i < 10; i++) {
      runner.run();
      await vi.advanceTimersByTimeAsync(50);
    }
    await vi.advanceTimersByTimeAsync(2000);
    expect(starts).toEqual([0, 1000]);
  });

  it('keeps min interval from the end of a slow sync and never overlaps syncs', async () => {
    make(1000, 3_600_000, 30_000, 500);
    runner.run();
    await vi.advanceTimersByTimeAsync(100);
    runner.run(); // during the sync
    await vi.advanceTimersByTimeAsync(3000);
    expect(starts).toEqual([0, 1500]);
  });

  it('syncs on every change with a zero min interval', async () => {
    make(0, 3_600_000, 30_000);
    for (let i = 0; i < 3; i++) {
      runner.run();
      await vi.advanceTimersByTimeAsync(10);
    }
    expect(starts).toEqual([0, 10, 20]);
  });

  it('syncs at least every max interval without requests', async () => {
    make(1000, 60_000, 30_000);
    await vi.advanceTimersByTimeAsync(130_000);
    expect(starts).toEqual([60_000, 120_000]);
    expect(triggers).toEqual(['periodic', 'periodic']);
  });

  it('retries a failed sync within the retry interval and reports the error', async () => {
    make(1000, 3_600_000, 30_000);
    fail = true;
    runner.run();
    await vi.advanceTimersByTimeAsync(0);
    fail = false;
    await vi.advanceTimersByTimeAsync(31_000);
    expect(starts).toEqual([0, 30_000]);
    expect(triggers).toEqual(['change', 'retry']);
    expect(errors).toHaveLength(1);
  });
});
