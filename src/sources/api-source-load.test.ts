/**
 * The load the informers put on the API server, against the fake API server in simulated time (Node's setTimeout
 * faked; sockets real): how long a watch lives, when it is made again, and what it asks for, compared with client-go's
 * reflector (Reflector.watch: timeoutSeconds = minWatchTimeout x (1 + rand), allowWatchBookmarks) and kube-apiserver's
 * cacher (a bookmark about every minute once the resourceVersion moved, the watch ended at its timeoutSeconds).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { node, recorder, svc, useApiSourceHarness } from '../../test/api-source-harness.ts';
import type { Resource } from '../../test/fake-apiserver.ts';
import { WATCH_IDLE_MS } from './kube-client.ts';

const h = useApiSourceHarness();
const WATCHED: readonly Resource[] = ['services', 'endpointslices', 'nodes'];

afterEach(() => {
  vi.useRealTimers();
});

/** Simulated time moves by `ms`; then the sockets get real time to carry what the timers started. */
async function elapse(ms: number): Promise<void> {
  vi.advanceTimersByTime(ms);
  await sleep(15);
  await h.server.until(() => h.server.watchCount() === WATCHED.length, 'every informer watching');
}

const watches = (resource: Resource) => h.server.requests({ resource, verb: 'watch' });

describe('watch lifetimes (client-go Reflector.watch)', () => {
  it('a quiet watch that gets the bookmarks lives until the timeoutSeconds it asked for (5-10 min), not 30 s', { timeout: 30_000 }, async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    h.seed();
    h.server.create('nodes', node('node-2'));
    const rec = recorder();
    await h.startSource(rec);
    await h.server.until(() => h.server.watchCount() === WATCHED.length, 'three watches');
    // 20 minutes of a calm cluster: no change any informer sees, but other nodes' status moves the resourceVersion,
    // and the API server sends every watch a bookmark each minute.
    for (let s = 10; s <= 1200; s += 10) {
      if (s % 60 === 0) {
        h.server.update('nodes', { ...node('node-2'), status: { heartbeat: s } });
        h.server.bookmark();
      }
      await elapse(10_000);
    }
    for (const resource of WATCHED) {
      const made = watches(resource);
      // Each watch asks the server to end it after 5 to 10 minutes, as client-go's does...
      for (const w of made) {
        expect(w.query).toMatchObject({ allowWatchBookmarks: 'true' });
        expect(Number(w.query['timeoutSeconds'])).toBeGreaterThanOrEqual(300);
        expect(Number(w.query['timeoutSeconds'])).toBeLessThan(600);
      }
      // ...and is made again only when the server ended it: at most 1 + 20/5 watches in 20 minutes (30 s: 40).
      expect(made.length).toBeGreaterThanOrEqual(3);
      expect(made.length).toBeLessThanOrEqual(5);
      expect(h.server.requests({ resource, verb: 'list' })).toHaveLength(1);
    }
    expect(rec.problems).toEqual([]);
  });

  it(
    'a watch that hears nothing at all (no event, no bookmark: a dead connection) is made again after WATCH_IDLE_MS, from its resourceVersion',
    { timeout: 30_000 },
    async () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      h.seed();
      const rec = recorder();
      await h.startSource(rec);
      await h.server.until(() => h.server.watchCount() === WATCHED.length, 'three watches');
      h.server.create('services', svc('api'));
      await rec.until(() => rec.log.includes('add Service default/api'), 'api added');
      const rv = String(h.server.resourceVersion);
      // Longer than a minute without a bookmark (one the server skipped) is still a live watch.
      for (let t = 0; t < WATCH_IDLE_MS - 5000; t += 5000) await elapse(5000);
      expect(watches('services')).toHaveLength(1);
      await elapse(10_000);
      for (const resource of WATCHED) expect(watches(resource)).toHaveLength(2);
      expect(watches('services')[1]!.query['resourceVersion']).toBe(rv);
      expect(h.server.requests({ resource: 'services', verb: 'list' })).toHaveLength(1);
      expect(WATCH_IDLE_MS).toBeGreaterThan(2 * 60_000);
      expect(WATCH_IDLE_MS).toBeLessThan(300_000);
    },
  );
});
