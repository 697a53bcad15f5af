/**
 * How often the informers ask a failing API server again, over simulated minutes: a ManualClock drives the back-off,
 * the list timeouts and ListWatch's delays, the sockets to the fake API server are real, and time moves on only once
 * no request is in flight. Compared with client-go v0.35's reflector (k8s.io/client-go/tools/cache/reflector.go
 * NewReflectorWithOptions: backoffManager = wait.NewExponentialBackoffManager(800ms, 30s, 2min, 2.0, 1.0), waited on by
 * wait.BackoffUntil around ListAndWatch and for a watch isWatchErrorRetriable keeps): a failure the API server answered
 * waits as long as the reflector's would; one it did not answer (refused, reset, timed out) keeps the 3 s cap, so the
 * informers are back within 3 s of an outage's end.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { ClientRequest } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../proxier/clock.ts';
import { recorder, svc, useApiSourceHarness } from '../../test/api-source-harness.ts';
import type { Resource } from '../../test/fake-apiserver.ts';
import { API_ANSWERED_BACKOFF, API_BACKOFF, cappedDelay, type ApiSourceOptions } from './api-source.ts';
import { VERY_SHORT_WATCH_MS } from './kube-client.ts';

const h = useApiSourceHarness();
const WATCHED: readonly Resource[] = ['services', 'endpointslices', 'nodes'];
const TEN_MINUTES = 600_000;
/** Every random draw of the back-off (ours and the model of client-go's) at the middle of its range. */
const RANDOM = 0.5;

/**
 * The times client-go v0.35's reflector lists in [0, ms] when every ListAndWatch fails: wait.BackoffUntil (sliding)
 * calls backoffManager.Backoff() after each; exponentialBackoffManagerImpl.getNextBackoff resets the Backoff only after
 * 2 min without a call (never, here), and Backoff.Step returns Jitter(Duration, 1.0) = Duration + rand x Duration
 * (wait.Jitter) while Duration doubles up to its Cap, 30 s: waits in [0.8, 1.6) s, [1.6, 3.2) s, ... then [30, 60) s.
 */
function reflectorListTimes(ms: number, random: () => number): number[] {
  const times = [0];
  let duration = 800;
  for (;;) {
    const wait = duration + random() * duration;
    duration = Math.min(duration * 2, 30_000);
    const next = times.at(-1)! + wait;
    if (next > ms) return times;
    times.push(next);
  }
}

// The requests in flight (sent, no response headers or error yet), and when each was sent in simulated time, seen
// through node:http's diagnostics channels.
const inFlight = new Set<ClientRequest>();
const sentAt: { readonly at: number; readonly path: string }[] = [];
let simulatedNow: () => number = () => NaN;
const sent = (m: unknown): void => {
  const request = (m as { request: ClientRequest }).request;
  inFlight.add(request);
  sentAt.push({ at: simulatedNow(), path: request.path });
};
const over = (m: unknown): void => void inFlight.delete((m as { request: ClientRequest }).request);
beforeEach(() => {
  inFlight.clear();
  sentAt.length = 0;
  subscribe('http.client.request.start', sent);
  subscribe('http.client.response.finish', over);
  subscribe('http.client.request.error', over);
});
afterEach(() => {
  unsubscribe('http.client.request.start', sent);
  unsubscribe('http.client.response.finish', over);
  unsubscribe('http.client.request.error', over);
});

/** How long before each Service list the informer waited: from the Service request before it (which failed). */
function waitsBeforeServiceLists(): number[] {
  const service = sentAt.filter((r) => r.path.startsWith('/api/v1/services?'));
  return service.flatMap((r, i) => (i > 0 && !r.path.includes('watch=true') ? [r.at - service[i - 1]!.at] : []));
}

function simulation() {
  const clock = new ManualClock(0);
  simulatedNow = () => clock.now();
  const options: Partial<ApiSourceOptions> = {
    clock,
    // The source's defaults, its random draws pinned.
    backoff: { ...API_BACKOFF, random: () => RANDOM },
    answeredBackoff: { ...API_ANSWERED_BACKOFF, random: () => RANDOM },
    reconnectDelayMs: cappedDelay(API_BACKOFF.maxMs!),
    veryShortWatchMs: VERY_SHORT_WATCH_MS,
    // The fake API server sends no bookmark unless told to; the watchdog is not under test here.
    staleAfterMs: 0,
  };
  /** Real time passes until no request is in flight and nothing has changed for a few turns of the event loop. */
  const settle = async (): Promise<void> => {
    let last = '';
    for (let i = 0, calm = 0; calm < 4; i++) {
      if (i > 5000) throw new Error(`not settled: ${inFlight.size} requests in flight`);
      await sleep(inFlight.size > 0 ? 2 : 0);
      const state = `${inFlight.size} ${clock.pending()} ${clock.nextDue()} ${h.server.requests().length} ${h.server.watchCount()}`;
      calm = inFlight.size === 0 && state === last ? calm + 1 : 0;
      last = state;
    }
  };
  /** Simulated time moves on by ms, timer by timer, each one's requests answered before the next fires. */
  const run = async (ms: number, until: () => boolean = () => false): Promise<void> => {
    const end = clock.now() + ms;
    await settle();
    while (!until() && clock.nextDue() <= end) {
      clock.advance(clock.nextDue() - clock.now());
      await settle();
    }
    if (!until()) clock.advance(end - clock.now());
    await settle();
  };
  return { clock, options, run };
}

const lists = (resource: Resource) => h.server.requests({ resource, verb: 'list' });

describe('the back-off after failures the API server answers (client-go reflector: wait.NewExponentialBackoffManager(800ms, 30s, 2min, 2.0, 1.0))', () => {
  it(
    'a permanent 403 (RBAC removed): each informer lists as often as client-go v0.35 does in 10 minutes, not every 3 s',
    { timeout: 60_000 },
    async () => {
      const sim = simulation();
      h.seed();
      for (const resource of WATCHED) h.server.failNext(resource, 'list', 403, 10_000);
      const rec = recorder();
      await h.startSource(rec, sim.options);
      await sim.run(TEN_MINUTES);
      const reflector = reflectorListTimes(TEN_MINUTES, () => RANDOM);
      const counts = WATCHED.map((r) => lists(r).length);
      console.log(`permanent 403 for 10 min: lists per informer ${counts.join(', ')} (client-go v0.35's reflector: ${reflector.length})`);
      for (const resource of WATCHED) expect(lists(resource).every((l) => l.status === 403)).toBe(true);
      expect(counts).toEqual([reflector.length, reflector.length, reflector.length]);
      // Whatever its random draws, client-go's reflector lists 15 to 25 times in these 10 minutes.
      expect(reflectorListTimes(TEN_MINUTES, () => 0.999999)).toHaveLength(15);
      expect(reflectorListTimes(TEN_MINUTES, () => 0)).toHaveLength(25);
      // Each failure's line says how long the informer waits (30 s + half of it, at the cap).
      expect(rec.problems.at(-1)).toMatch(/^(Service|EndpointSlice|Node): \w+ informer failed: HTTP 403: .*; restarting in 45000 ms$/);
    },
  );

  it(
    "a very short watch every time (client-go handleAnyWatch's VeryShortWatchError, then ListAndWatch's back-off): lists as often as client-go does",
    { timeout: 60_000 },
    async () => {
      const sim = simulation();
      h.seed();
      h.server.endWatchesAtOnce('services');
      const rec = recorder();
      await h.startSource(rec, sim.options);
      await sim.run(TEN_MINUTES);
      const reflector = reflectorListTimes(TEN_MINUTES, () => RANDOM);
      console.log(`very short watches for 10 min: ${lists('services').length} Service lists (client-go v0.35's reflector: ${reflector.length})`);
      expect(lists('services')).toHaveLength(reflector.length);
      expect(lists('services').every((l) => l.status === 200)).toBe(true);
      expect(rec.problems.filter((p) => p.startsWith('Service:')).at(-1)).toMatch(/very short watch: .*; restarting in 45000 ms$/);
      for (const resource of ['endpointslices', 'nodes'] as const) expect(lists(resource)).toHaveLength(1);
    },
  );

  it('the back-off starts over after 2 min without a failure, as getNextBackoff resets it; not after 1 min', { timeout: 60_000 }, async () => {
    const sim = simulation();
    h.seed();
    h.server.failNext('services', 'list', 403, 8);
    const rec = recorder();
    // (The watch dropped below began less than a second before in real time: no very short watch here.)
    await h.startSource(rec, { ...sim.options, veryShortWatchMs: 0 });
    await sim.run(TEN_MINUTES, () => h.server.watchCount('services') === 1);
    expect(waitsBeforeServiceLists()).toEqual([1200, 2400, 4800, 9600, 19200, 38400, 45000, 45000]);
    const failWatch = async (): Promise<void> => {
      h.server.failNext('services', 'watch', 403);
      h.server.dropWatches('services');
      await sim.run(TEN_MINUTES, () => h.server.watchCount('services') === 1);
    };
    // Healthy for 1 min after the last failure: the streak goes on.
    await sim.run(60_000 - 45_000);
    await failWatch();
    expect(waitsBeforeServiceLists().at(-1)).toBe(45000);
    // Healthy for 2 min: it starts over.
    await sim.run(120_000 - 45_000 + 1);
    await failWatch();
    expect(waitsBeforeServiceLists().at(-1)).toBe(1200);
    expect(rec.problems.at(-1)).toMatch(/^Service: Service informer failed: HTTP 403 .*; restarting in 1200 ms$/);
  });
});

describe('the back-off after failures the API server did not answer: capped at 3 s, for a fast recovery', () => {
  it(
    'an outage of 10 minutes (connection refused): every informer watches again within 3 s of the API server listening again',
    { timeout: 60_000 },
    async () => {
      const sim = simulation();
      h.seed();
      const rec = recorder();
      // (The watches the outage cuts began less than a second before in real time: no very short watch here.)
      await h.startSource(rec, { ...sim.options, veryShortWatchMs: 0 });
      await sim.run(1000);
      expect(h.server.watchCount()).toBe(3);
      await h.server.down();
      await sim.run(TEN_MINUTES);
      h.server.create('services', svc('during-outage'));
      await h.server.up();
      const up = sim.clock.now();
      await sim.run(TEN_MINUTES, () => h.server.watchCount() === 3);
      const ms = sim.clock.now() - up;
      console.log(`outage of 10 min: all three informers watching ${ms} ms after the API server listened again`);
      expect(ms).toBeLessThanOrEqual(API_BACKOFF.maxMs!);
      await rec.until(() => rec.log.includes('add Service default/during-outage'), 'the Service created during the outage');
      // Refused watches are asked again from their resourceVersion: no list.
      for (const resource of WATCHED) expect(lists(resource)).toHaveLength(1);
    },
  );

  it(
    'an answered failure right after an outage waits its own streak from 0.8 s (client-go: the one shared manager, 30-60 s by then)',
    { timeout: 60_000 },
    async () => {
      const sim = simulation();
      h.seed();
      const rec = recorder();
      // (The watches the outage cuts began less than a second before in real time: no very short watch here.)
      await h.startSource(rec, { ...sim.options, veryShortWatchMs: 0 });
      await sim.run(1000);
      await h.server.down();
      await sim.run(TEN_MINUTES);
      // The API server is back, and turns the first Service watch away (a 503 without Retry-After: the informer lists).
      h.server.failNext('services', 'watch', 503);
      await h.server.up();
      const up = sim.clock.now();
      await sim.run(TEN_MINUTES, () => h.server.watchCount() === 3);
      const ms = sim.clock.now() - up;
      console.log(`outage of 10 min, then a 503: all three informers watching ${ms} ms after the API server listened again`);
      expect(rec.problems.filter((p) => p.startsWith('Service:')).at(-1)).toMatch(/HTTP 503 .*; restarting in 1200 ms$/);
      expect(ms).toBeLessThanOrEqual(API_BACKOFF.maxMs! + 1200);
      expect(lists('services')).toHaveLength(2);
    },
  );
});
