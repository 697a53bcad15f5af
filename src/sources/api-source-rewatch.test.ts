/**
 * What the informers ask the API server for after a watch could not be made, compared with client-go's reflector
 * (k8s.io/client-go/tools/cache/reflector.go, v0.35: Reflector.watch and isWatchErrorRetriable; rest.Request.Watch
 * and checkWait): a watch refused (connection refused: the API server is down) or turned away with 429 (API priority
 * and fairness, a watch cache still initialising, an API server shutting down: Retry-After) is asked again, from the
 * resourceVersion it had, after the back-off; only a watch the server answers with 410 (its watch cache no longer has
 * that resourceVersion: a restarted API server) is followed by a list. Every node lists every Service and
 * EndpointSlice again only when it must.
 */
import { describe, expect, it } from 'vitest';
import { recorder, slice, svc, useApiSourceHarness } from '../../test/api-source-harness.ts';
import type { Resource } from '../../test/fake-apiserver.ts';
import { VERY_SHORT_WATCH_MS } from './kube-client.ts';

const h = useApiSourceHarness();
const WATCHED: readonly Resource[] = ['services', 'endpointslices', 'nodes'];

const lists = (): number => h.server.requests({ verb: 'list' }).length;

describe('api source: watches made again after a failure (client-go Reflector.watch)', () => {
  it('Reflector.watch isWatchErrorRetriable: a watch refused during an outage is asked again from its resourceVersion when the API server is back, not listed again', async () => {
    h.seed();
    const rec = recorder();
    await h.startSource(rec);
    await h.server.until(() => h.server.watchCount() === 3, 'three watches');
    const rvs = new Map(WATCHED.map((r) => [r, h.server.requests({ resource: r, verb: 'watch' }).at(-1)!.query['resourceVersion']]));
    const listed = lists();
    await h.server.down();
    // Long enough for several refused attempts of each informer (the harness's back-off: 100 ms doubling to 400 ms).
    await new Promise((r) => setTimeout(r, 1200));
    // An API server that still has the history (an HA peer, or one back before its watch cache moved on).
    h.server.create('services', svc('during-outage'));
    const upAt = h.server.requests().length;
    await h.server.up();
    await rec.until(() => rec.log.includes('add Service default/during-outage'), 'the Service created during the outage', 4000);
    await h.server.until(() => h.server.watchCount() === 3, 'three watches again', 4000);
    const after = h.server.requests().slice(upAt);
    console.log(`after the outage: ${after.map((r) => `${r.verb} ${r.resource} ${r.status}`).join(', ')}`);
    expect(lists() - listed).toBe(0);
    for (const r of WATCHED) expect(after.find((q) => q.resource === r)?.query['resourceVersion']).toBe(rvs.get(r));
  });

  it('Reflector.watch: a restarted API server whose watch cache begins after the resourceVersion (410) is listed again once per informer', async () => {
    h.seed();
    const rec = recorder();
    await h.startSource(rec);
    await h.server.until(() => h.server.watchCount() === 3, 'three watches');
    const listed = lists();
    await h.server.down();
    await new Promise((r) => setTimeout(r, 800));
    h.server.create('services', svc('during-outage'));
    // Its new watch cache starts at the current resourceVersion: older ones are too old (410).
    h.server.compact();
    await h.server.up();
    await rec.until(() => rec.log.includes('add Service default/during-outage'), 'the Service created during the outage', 4000);
    await h.server.until(() => h.server.watchCount() === 3, 'three watches again', 4000);
    expect(lists() - listed).toBe(3);
  });

  it('rest.Request.Watch checkWait + isWatchErrorRetriable: a watch turned away with 429 and Retry-After is asked again after it, from its resourceVersion, not listed again', async () => {
    h.seed();
    const rec = recorder();
    await h.startSource(rec);
    await h.server.until(() => h.server.watchCount() === 3, 'three watches');
    h.server.create('services', svc('api'));
    await rec.until(() => rec.log.includes('add Service default/api'), 'api added');
    const rv = String(h.server.resourceVersion);
    const before = h.server.requests().length;
    // An API server shutting down answers new requests so (kube-apiserver WithRetryAfter: 429, Retry-After: 5).
    h.server.failNext('services', 'watch', 429, 2, 1);
    h.server.dropWatches('services');
    await h.server.until(() => h.server.watchCount('services') === 1, 'the Service watch again', 5000);
    const after = h.server
      .requests()
      .slice(before)
      .filter((r) => r.resource === 'services');
    expect(after.map((r) => `${r.verb} ${r.status}`)).toEqual(['watch 429', 'watch 429', 'watch 200']);
    for (const r of after) expect(r.query['resourceVersion']).toBe(rv);
    expect(after[1]!.at - after[0]!.at).toBeGreaterThanOrEqual(1000);
    expect(after[2]!.at - after[1]!.at).toBeGreaterThanOrEqual(1000);
    expect(rec.synced('Service')).toBe(1);
  });

  it('rest.Request.Watch IsProbableEOF: a watch whose connection is reset under the request (a load balancer without a backend) is asked again, not listed again', async () => {
    h.seed();
    const rec = recorder();
    await h.startSource(rec);
    await h.server.until(() => h.server.watchCount() === 3, 'three watches');
    h.server.create('endpointslices', slice('web-def'));
    await rec.until(() => rec.log.includes('add EndpointSlice default/web-def'), 'web-def added');
    const before = h.server.requests().length;
    h.server.resetNext('endpointslices', 'watch', 2);
    h.server.dropWatches('endpointslices');
    await h.server.until(() => h.server.watchCount('endpointslices') === 1, 'the EndpointSlice watch again', 5000);
    const after = h.server
      .requests()
      .slice(before)
      .filter((r) => r.resource === 'endpointslices');
    expect(after.map((r) => `${r.verb} ${r.status ?? 'reset'}`)).toEqual(['watch reset', 'watch reset', 'watch 200']);
    expect(rec.synced('EndpointSlice')).toBe(1);
  });

  it('handleAnyWatch VeryShortWatchError: watches that end within a second with nothing sent are an error, and the informer lists again, so a change they never carry is still seen', async () => {
    h.seed();
    const rec = recorder();
    await h.startSource(rec, { veryShortWatchMs: VERY_SHORT_WATCH_MS });
    await h.server.until(() => h.server.watchCount() === 3, 'three watches');
    h.server.endWatchesAtOnce('services');
    h.server.dropWatches('services');
    h.server.create('services', svc('unseen'));
    await rec.until(() => rec.log.includes('add Service default/unseen'), 'the Service no watch carried', 3000);
    expect(rec.problems.find((p) => p.startsWith('Service:'))).toMatch(
      /^Service: Service informer failed: very short watch: the API server ended the watch of \/api\/v1\/services within a second, nothing sent; restarting in 100 ms$/,
    );
  });
});
