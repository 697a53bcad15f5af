/** every(): a repeating job on the clock seam, driven by the manual clock. */
import { describe, expect, it } from 'vitest';
import { every, ManualClock } from './clock.ts';

describe('every', () => {
  it('runs the job once per period and not after stop', () => {
    const clock = new ManualClock();
    let runs = 0;
    const stop = every(clock, 1000, () => runs++);
    clock.advance(999);
    expect(runs).toBe(0);
    clock.advance(1);
    expect(runs).toBe(1);
    clock.advance(500);
    stop();
    clock.advance(10_000);
    expect(runs).toBe(1);
    expect(clock.pending()).toBe(0);
  });

  it('schedules the next run only after an async job has finished', async () => {
    const clock = new ManualClock();
    let release: () => void = () => undefined;
    let started = 0;
    const stop = every(clock, 100, () => {
      started++;
      return new Promise<void>((r) => (release = r));
    });
    clock.advance(100);
    expect(started).toBe(1);
    expect(clock.pending()).toBe(0);
    clock.advance(1000);
    expect(started).toBe(1);
    release();
    await new Promise((r) => setTimeout(r, 0));
    expect(clock.pending()).toBe(1);
    clock.advance(100);
    expect(started).toBe(2);
    stop();
  });
});
