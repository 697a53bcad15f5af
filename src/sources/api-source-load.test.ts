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
import { statusObject } from '../../test/fake-apiserver-watch.ts';
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

describe('a watch cut mid-stream (client-go StreamWatcher.receive)', () => {
  it('a connection reset after the response is an end of the watch, made again from its resourceVersion without a list', async () => {
    h.seed();
    const rec = recorder();
    await h.startSource(rec);
    await h.server.until(() => h.server.watchCount() === WATCHED.length, 'three watches');
    h.server.create('services', svc('api'));
    await rec.until(() => rec.log.includes('add Service default/api'), 'api added');
    const rv = String(h.server.resourceVersion);
    h.server.resetWatches();
    await h.server.until(() => h.server.watchCount() === WATCHED.length && WATCHED.every((r) => watches(r).length === 2), 'the re-watches');
    expect(watches('services')[1]!.query['resourceVersion']).toBe(rv);
    h.server.update('services', svc('api', { port: 81 }));
    await rec.until(() => rec.log.includes('update Service default/api'), 'api updated');
    for (const resource of WATCHED) expect(h.server.requests({ resource, verb: 'list' })).toHaveLength(1);
    expect(rec.problems).toEqual([]);
  });
});

const synced = (rec: ReturnType<typeof recorder>, times = 1) =>
  rec.until(() => (['Service', 'EndpointSlice', 'Node'] as const).every((k) => rec.synced(k) >= times), `every kind synced ${times} times`);
const lists = (resource: Resource): Record<string, string | number | undefined>[] =>
  h.server.requests({ resource, verb: 'list' }).map((l) => ({ ...l.query, status: l.status }));
const errorLine = (code: number, message: string) => `${JSON.stringify({ type: 'ERROR', object: statusObject(code, message) })}\n`;

describe('lists (client-go Reflector.list, relistResourceVersion)', () => {
  it('the first list asks resourceVersion 0, which the watch cache answers whole, in one response whatever the limit', async () => {
    h.seed();
    for (let i = 0; i < 4; i++) h.server.create('services', svc(`s${i}`));
    const rec = recorder();
    await h.startSource(rec, { listPageSize: 2 });
    await synced(rec);
    for (const resource of WATCHED) expect(lists(resource)).toEqual([expect.objectContaining({ resourceVersion: '0', limit: '2', status: 200 })]);
    expect(rec.log.filter((l) => l.startsWith('add Service'))).toHaveLength(5);
  });

  for (const how of ['an ERROR in the stream', 'an expired watch (410)'] as const)
    it(`after ${how}, the list asks the last resourceVersion seen (a bookmark's), unpaged: the watch cache answers it, not etcd`, async () => {
      h.seed();
      const rec = recorder();
      await h.startSource(rec, { listPageSize: 2 });
      await h.server.until(() => h.server.watchCount() === WATCHED.length, 'three watches');
      h.server.create('services', svc('api'));
      await rec.until(() => rec.log.includes('add Service default/api'), 'api added');
      // A Service the informer does not see moves the resourceVersion; the bookmark carries it.
      h.server.create('services', svc('hidden', { clusterIP: 'None', labels: { 'service.kubernetes.io/headless': '' } }));
      h.server.bookmark('services');
      await h.server.until(() => true, 'the bookmark sent');
      await new Promise((r) => setTimeout(r, 50));
      const seen = String(h.server.resourceVersion);
      if (how === 'an ERROR in the stream') {
        h.server.failNextEvent('services', errorLine(500, 'unable to transform key "/registry/services/default/api"'));
        h.server.update('services', svc('api', { port: 81 }));
      } else {
        h.server.dropWatches('services');
        h.server.update('services', svc('api', { port: 81 }));
        h.server.compact();
      }
      await rec.until(() => rec.log.includes('update Service default/api'), 'the change, by the list');
      const [, relist, ...rest] = lists('services');
      expect(rest).toEqual([]);
      expect(relist).toEqual({ labelSelector: expect.any(String), resourceVersion: seen, status: 200 });
    });

  it('a list at a resourceVersion this API server does not have yet (504 Too large resource version: an HA peer behind) is asked again at once as a consistent read', async () => {
    h.seed();
    const rec = recorder();
    await h.startSource(rec, { listPageSize: 2 });
    await synced(rec);
    await h.server.until(() => h.server.watchCount() === WATCHED.length, 'three watches');
    const ahead = String(h.server.resourceVersion + 1000);
    h.server.injectRaw('services', `{"type":"BOOKMARK","object":{"kind":"Service","apiVersion":"v1","metadata":{"resourceVersion":"${ahead}"}}}\n`);
    h.server.injectRaw('services', errorLine(500, 'etcdserver: request timed out'));
    await rec.until(() => rec.synced('Service') === 2, 'the relist');
    expect(lists('services').map((l) => [l['resourceVersion'], l['limit'], l.status])).toEqual([
      ['0', '2', 200],
      [ahead, undefined, 504],
      [undefined, '2', 200],
    ]);
    await h.server.until(() => h.server.watchCount('services') === 1, 'watching again');
    expect(watches('services').at(-1)!.query['resourceVersion']).toBe(String(h.server.resourceVersion));
    expect(rec.problems.filter((p) => /too large/i.test(p))).toEqual([]);
  });

  it('without a watch cache a resourceVersion-0 list comes paged, so later lists page too; one at a compacted resourceVersion (410) falls back to a consistent list', async () => {
    h.server.watchCache = false;
    h.seed();
    for (let i = 0; i < 3; i++) h.server.create('services', svc(`s${i}`));
    const rec = recorder();
    await h.startSource(rec, { listPageSize: 2 });
    await synced(rec);
    expect(lists('services').map((l) => [l['resourceVersion'], l['limit'], 'continue' in l])).toEqual([
      ['0', '2', false],
      [undefined, '2', true],
    ]);
    await h.server.until(() => h.server.watchCount() === WATCHED.length, 'three watches');
    const seen = String(h.server.resourceVersion);
    h.server.dropWatches('services');
    h.server.create('services', svc('later'));
    h.server.compact();
    await rec.until(() => rec.log.includes('add Service default/later'), 'the relist');
    expect(
      lists('services')
        .slice(2)
        .map((l) => [l['resourceVersion'], l['limit'], 'continue' in l, l.status]),
    ).toEqual([
      [seen, '2', false, 410],
      [undefined, '2', false, 200],
      [undefined, '2', true, 200],
      [undefined, '2', true, 200],
    ]);
  });
});
