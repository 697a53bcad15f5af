/**
 * Supervisor: restart with capped, jittered exponential backoff; watchdog;
 * reports from replaced runs ignored; stop() leaves nothing behind. Driven by
 * a ManualClock.
 */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../proxier/clock.ts';
import { DEFAULT_BACKOFF, Supervisor, backoffDelay, type RunControl, type SupervisorOptions } from './supervisor.ts';

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

interface FakeRun {
  readonly control: RunControl;
  stopped: boolean;
}

function harness(opts: Partial<SupervisorOptions> = {}) {
  const clock = new ManualClock(1_000_000);
  const runs: FakeRun[] = [];
  const restarts: Array<{ err: unknown; delayMs: number; how?: 'restart' | 'retry' }> = [];
  const sup = new Supervisor({
    name: 'test informer',
    clock,
    backoff: { random: () => 0 },
    staleAfterMs: 60_000,
    start: (control) => {
      const run: FakeRun = { control, stopped: false };
      runs.push(run);
      return { stop: () => void (run.stopped = true) };
    },
    onRestart: (err, delayMs, how) => restarts.push(how === 'retry' ? { err, delayMs, how } : { err, delayMs }),
    ...opts,
  });
  const last = (): FakeRun => runs[runs.length - 1]!;
  return { clock, runs, restarts, sup, last };
}

describe('backoffDelay', () => {
  it('doubles from 1 s and caps at 30 s; jitter only shortens', () => {
    const o = { ...DEFAULT_BACKOFF, random: () => 0 };
    expect([0, 1, 2, 3, 4, 5, 6].map((a) => backoffDelay(a, o))).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000]);
    expect(backoffDelay(0, { ...o, random: () => 0.999999 })).toBe(800);
    expect(backoffDelay(10, { ...o, random: () => 0.5 })).toBe(27000);
  });

  it('with jitterAdds, adds up to jitter x the delay, as client-go wait.Jitter(d, maxFactor) = d + rand x maxFactor x d', () => {
    const o = { ...DEFAULT_BACKOFF, initialMs: 800, jitter: 1, jitterAdds: true, random: () => 0 };
    expect([0, 1, 5, 6].map((a) => backoffDelay(a, o))).toEqual([800, 1600, 25600, 30000]);
    expect(backoffDelay(0, { ...o, random: () => 0.5 })).toBe(1200);
    expect(backoffDelay(6, { ...o, random: () => 0.999999 })).toBe(60000);
  });
});

describe('Supervisor', () => {
  it('replaces a failed run after the backoff delay, doubling while failures continue', async () => {
    const { clock, runs, restarts, sup, last } = harness();
    await sup.start();
    expect(runs).toHaveLength(1);
    const boom = new Error('HTTP 500');
    last().control.failed(boom);
    expect(runs[0]!.stopped).toBe(true);
    expect(runs[0]!.control.signal.aborted).toBe(true);
    expect(restarts).toEqual([{ err: boom, delayMs: 1000 }]);
    clock.advance(999);
    await flush();
    expect(runs).toHaveLength(1);
    clock.advance(1);
    await flush();
    expect(runs).toHaveLength(2);
    last().control.failed(new Error('again'));
    clock.advance(2000);
    await flush();
    last().control.failed(new Error('and again'));
    expect(restarts.map((r) => r.delayMs)).toEqual([1000, 2000, 4000]);
    expect(sup.restarts).toBe(3);
    await sup.stop();
  });

  it('starts the backoff over after a quiet period', async () => {
    const { clock, restarts, sup, last } = harness({ backoff: { random: () => 0, resetAfterMs: 120_000 }, staleAfterMs: 0 });
    await sup.start();
    last().control.failed(new Error('1'));
    clock.advance(1000);
    await flush();
    last().control.failed(new Error('2'));
    clock.advance(2000);
    await flush();
    clock.advance(120_000);
    last().control.activity();
    last().control.failed(new Error('3'));
    expect(restarts.map((r) => r.delayMs)).toEqual([1000, 2000, 1000]);
    await sup.stop();
  });

  it('ignores reports from a run that has been replaced', async () => {
    const { clock, runs, restarts, sup } = harness();
    await sup.start();
    const first = runs[0]!;
    first.control.failed(new Error('first'));
    first.control.failed(new Error('duplicate report'));
    clock.advance(1000);
    await flush();
    first.control.failed(new Error('late report from the old run'));
    expect(restarts).toHaveLength(1);
    expect(runs).toHaveLength(2);
    expect(runs[1]!.stopped).toBe(false);
    await sup.stop();
  });

  it('restarts a run that shows no activity for staleAfterMs; activity postpones the watchdog', async () => {
    const { clock, runs, restarts, sup, last } = harness();
    await sup.start();
    clock.advance(50_000);
    last().control.activity();
    clock.advance(50_000);
    expect(restarts).toHaveLength(0);
    clock.advance(10_000);
    expect(restarts).toHaveLength(1);
    expect(String(restarts[0]!.err)).toContain('watchdog');
    expect(runs[0]!.stopped).toBe(true);
    clock.advance(1000);
    await flush();
    expect(runs).toHaveLength(2);
    await sup.stop();
  });

  it('counts a throwing start as a failure, and stops a run that failed while starting', async () => {
    let calls = 0;
    const stopped: number[] = [];
    const h = harness({
      start: (control) => {
        const n = ++calls;
        if (n === 1) throw new Error('no cluster');
        if (n === 2) control.failed(new Error('list failed'));
        return { stop: () => void stopped.push(n) };
      },
    });
    await h.sup.start();
    expect(h.restarts.map((r) => String(r.err))).toEqual(['Error: no cluster']);
    h.clock.advance(1000);
    await flush();
    expect(stopped).toEqual([2]);
    expect(h.restarts.map((r) => r.delayMs)).toEqual([1000, 2000]);
    h.clock.advance(2000);
    await flush();
    expect(calls).toBe(3);
    await h.sup.stop();
    expect(stopped).toEqual([2, 3]);
  });

  it('stop() stops the run, cancels a pending restart and starts nothing later', async () => {
    const { clock, runs, sup, last } = harness();
    await sup.start();
    last().control.failed(new Error('x'));
    expect(clock.pending()).toBeGreaterThan(0);
    await sup.stop();
    expect(clock.pending()).toBe(0);
    clock.advance(100_000);
    await flush();
    expect(runs).toHaveLength(1);
    await sup.start();
    expect(runs).toHaveLength(2);
    await sup.stop();
    expect(runs[1]!.stopped).toBe(true);
    expect(runs[1]!.control.signal.aborted).toBe(true);
    expect(clock.pending()).toBe(0);
  });

  it('keeps restarting when the onRestart hook throws', async () => {
    const { clock, runs, sup, last } = harness({
      onRestart: () => {
        throw new Error('bad hook');
      },
    });
    await sup.start();
    last().control.failed(new Error('x'));
    clock.advance(1000);
    await flush();
    expect(runs).toHaveLength(2);
    await sup.stop();
  });

  it('retryNow() starts a restart that waits for its back-off at once, and does nothing otherwise', async () => {
    const { clock, runs, sup, last } = harness({ backoff: { random: () => 0, initialMs: 8000 } });
    await sup.start();
    expect(sup.retryNow()).toBe(false);
    last().control.failed(new Error('ECONNREFUSED'));
    expect(sup.retryNow()).toBe(true);
    await flush();
    expect(runs).toHaveLength(2);
    expect(clock.pending()).toBe(1); // only the new run's watchdog
    expect(sup.retryNow()).toBe(false);
    await sup.stop();
  });

  it('retries at once after a failure retryAtOnce accepts, once per back-off streak (a rotated token), then backs off', async () => {
    const unauthorized = Object.assign(new Error('Unauthorized'), { statusCode: 401 });
    const { clock, runs, restarts, sup, last } = harness({
      staleAfterMs: 0,
      retryAtOnce: (err) => (err as { statusCode?: number }).statusCode === 401,
    });
    await sup.start();
    last().control.failed(unauthorized);
    clock.advance(0);
    await flush();
    expect(runs).toHaveLength(2);
    last().control.failed(unauthorized);
    expect(restarts.map((r) => r.delayMs)).toEqual([0, 1000]);
    clock.advance(1000);
    await flush();
    last().control.failed(new Error('other'));
    expect(restarts.map((r) => r.delayMs)).toEqual([0, 1000, 2000]);
    // A new streak (no failure for resetAfterMs) may retry at once again.
    clock.advance(2000);
    await flush();
    clock.advance(DEFAULT_BACKOFF.resetAfterMs);
    last().control.failed(unauthorized);
    expect(restarts.at(-1)!.delayMs).toBe(0);
    await sup.stop();
  });

  it('answered failures wait answeredBackoff, on a streak of their own; both streaks start over after their resetAfterMs without a failure', async () => {
    const answered = (err: unknown): boolean => (err as { statusCode?: number }).statusCode !== undefined;
    const { clock, restarts, sup, last } = harness({
      staleAfterMs: 0,
      answered,
      answeredBackoff: { initialMs: 800, maxMs: 30_000, jitter: 1, jitterAdds: true, random: () => 0 },
    });
    await sup.start();
    const forbidden = Object.assign(new Error('Forbidden'), { statusCode: 403 });
    const refused = new Error('connect ECONNREFUSED');
    const failThenWait = async (err: Error): Promise<void> => {
      last().control.failed(err);
      clock.advance(restarts.at(-1)!.delayMs);
      await flush();
    };
    for (const err of [forbidden, forbidden, refused, refused, forbidden, refused]) await failThenWait(err);
    expect(restarts.map((r) => r.delayMs)).toEqual([800, 1600, 1000, 2000, 3200, 4000]);
    // resetAfterMs (2 min) without a failure: both start over.
    clock.advance(DEFAULT_BACKOFF.resetAfterMs);
    await failThenWait(forbidden);
    await failThenWait(refused);
    expect(restarts.map((r) => r.delayMs).slice(-2)).toEqual([800, 1000]);
    await sup.stop();
  });

  // client-go's reflector waits on one backoff manager for its watch retries (isWatchErrorRetriable) and for its
  // ListAndWatch restarts, so a watch refused after a failed list waits as long as the next restart would.
  it('backOff(): a run retrying a step waits the back-off on the same streak as restarts; retryNow() ends the wait', async () => {
    const { clock, runs, restarts, sup, last } = harness({ staleAfterMs: 0 });
    await sup.start();
    const refused = new Error('connect ECONNREFUSED');
    const waits: boolean[] = [];
    void last()
      .control.backOff(refused)
      .then((go) => waits.push(go));
    clock.advance(999);
    await flush();
    expect(waits).toEqual([]);
    clock.advance(1);
    await flush();
    expect(waits).toEqual([true]);
    last().control.failed(new Error('list failed'));
    clock.advance(2000);
    await flush();
    expect(runs).toHaveLength(2);
    void last()
      .control.backOff(refused)
      .then((go) => waits.push(go));
    expect(restarts.map((r) => [r.delayMs, r.how ?? 'restart'])).toEqual([
      [1000, 'retry'],
      [2000, 'restart'],
      [4000, 'retry'],
    ]);
    expect(sup.retryNow()).toBe(true);
    await flush();
    expect(waits).toEqual([true, true]);
    expect(runs).toHaveLength(2);
    expect(sup.restarts).toBe(1);
    await sup.stop();
  });

  it('backOff(): the wait ends with false once the run is replaced or the supervisor stopped; a replaced run waits for nothing', async () => {
    const { clock, runs, sup, last } = harness({ staleAfterMs: 0 });
    await sup.start();
    const first = last();
    const waits: boolean[] = [];
    void first.control.backOff(new Error('refused')).then((go) => waits.push(go));
    first.control.failed(new Error('watch failed'));
    await flush();
    expect(waits).toEqual([false]);
    expect(await first.control.backOff(new Error('late'))).toBe(false);
    clock.advance(2000);
    await flush();
    expect(runs).toHaveLength(2);
    void last()
      .control.backOff(new Error('refused'))
      .then((go) => waits.push(go));
    await sup.stop();
    await flush();
    expect(waits).toEqual([false, false]);
    expect(clock.pending()).toBe(0);
  });

  it('backOff(): waiting is activity, so a long Retry-After does not trip the watchdog', async () => {
    const { clock, restarts, sup, last } = harness({ staleAfterMs: 60_000, waitAtLeast: () => 50_000 });
    await sup.start();
    clock.advance(30_000);
    let again = false;
    void last()
      .control.backOff(new Error('429'))
      .then((go) => (again = go));
    clock.advance(50_000);
    await flush();
    expect(again).toBe(true);
    expect(restarts.map((r) => r.how)).toEqual(['retry']);
    clock.advance(59_000);
    expect(restarts).toHaveLength(1);
    clock.advance(1000);
    expect(String(restarts.at(-1)!.err)).toContain('watchdog');
    await sup.stop();
  });
});
