/**
 * The process clock against a step of the wall clock (an NTP step at boot, a VM restored from a snapshot, `date -s`):
 * Go's time.Since and Sub, which upstream's runner and healthz use, read the monotonic clock; so does realClock, so a
 * step changes no interval, while the times shown (metrics, /healthz, /debug) follow the wall clock.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { epochMs } from '../../proxier/clock.ts';
import { SyncRunner } from '../../proxier/sync-runner.ts';
import { HealthState } from '../servers/health-state.ts';
import { realClock } from './clock.ts';

const HOUR = 3_600_000;
/** Date.now() from now on reads `by` ms off (negative: the clock was stepped back). */
const stepWallClock = (by: number) => {
  const now = Date.now.bind(Date);
  vi.spyOn(Date, 'now').mockImplementation(() => now() + by);
};
const until = async (cond: () => boolean, ms: number) => {
  const end = performance.now() + ms;
  while (!cond() && performance.now() < end) await new Promise((r) => setTimeout(r, 5));
  return cond();
};

afterEach(() => void vi.restoreAllMocks());

describe('realClock across a step of the wall clock', () => {
  it('keeps the sync runner on time when the wall clock is stepped back an hour (upstream BoundedFrequencyRunner: time.Since)', async () => {
    let syncs = 0;
    const runner = new SyncRunner({
      fn: async () => void syncs++,
      minIntervalMs: 50,
      maxIntervalMs: 60_000,
      retryIntervalMs: 1000,
      clock: realClock,
    });
    runner.start();
    runner.run();
    expect(await until(() => syncs === 1, 2000)).toBe(true);
    stepWallClock(-HOUR);
    runner.run();
    // Before: the change waited for the wall clock to come back to the last sync's end plus 50 ms, an hour.
    expect(await until(() => syncs === 2, 2000)).toBe(true);
    stepWallClock(2 * HOUR);
    runner.run();
    expect(await until(() => syncs === 3, 2000)).toBe(true);
    await runner.stop();
  });

  it('keeps /healthz healthy across a step forward, and shows wall-clock times (upstream ProxyHealthServer: time.Since)', () => {
    const health = new HealthState({ healthTimeoutMs: 60_000, clock: realClock, families: ['IPv4'] });
    // A change queued a moment ago, and then the wall clock jumps two hours ahead: still well within the timeout.
    health.queuedUpdate('IPv4');
    stepWallClock(2 * HOUR);
    const report = health.report();
    expect(report.healthy).toBe(true);
    expect(Math.abs(report.currentTime - Date.now())).toBeLessThan(1000);
  });

  it('takes a sync period longer than Node timers hold (720h, which upstream takes) without a sync loop', async () => {
    const overflows: string[] = [];
    const onWarning = (w: Error) => void (w.name === 'TimeoutOverflowWarning' && overflows.push(w.message));
    process.on('warning', onWarning);
    let syncs = 0;
    const runner = new SyncRunner({
      fn: async () => void syncs++,
      minIntervalMs: 1000,
      maxIntervalMs: 720 * HOUR,
      retryIntervalMs: 720 * HOUR,
      clock: realClock,
    });
    try {
      runner.start();
      runner.run();
      // Before: a 720h timer fired after 1 ms, and the runner synced ~170 times in these 300 ms.
      await new Promise((r) => setTimeout(r, 300));
      expect([syncs, overflows]).toEqual([1, []]);
    } finally {
      await runner.stop();
      process.off('warning', onWarning);
    }
  });

  it('measures intervals on the monotonic clock and converts its readings to the wall clock', () => {
    const before = realClock.now();
    stepWallClock(-HOUR);
    expect(Math.abs(realClock.now() - before)).toBeLessThan(1000);
    expect(Math.abs(epochMs(realClock, realClock.now()) - Date.now())).toBeLessThan(50);
  });
});
