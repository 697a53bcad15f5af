/**
 * The API source under failures, with the real client-node informers against
 * the fake API server: re-watch without duplicates, bookmarks, 410 relists,
 * failed lists and watches with backoff, server outages, throwing handlers,
 * stop(). Backoffs and ListWatch's own reconnect delays are shortened;
 * nothing waits for client-node's 30 s idle timeout.
 */
import { describe, expect, it } from 'vitest';
import { node, recorder, slice, svc, useApiSourceHarness } from '../../test/api-source-harness.ts';
import { statusObject } from '../../test/fake-apiserver-watch.ts';

const h = useApiSourceHarness();

describe('api source resilience', () => {
  it('re-watches from the last resourceVersion after a clean watch end, without relisting or repeating events', async () => {
    h.seed();
    const rec = recorder();
    await h.startSource(rec);
    await h.server.until(() => h.server.watchCount() === 3, 'three watches');
    h.server.create('services', svc('api'));
    await rec.until(() => rec.log.includes('add Service default/api'), 'api added');
    const rv = h.server.resourceVersion;
    h.server.dropWatches('services');
    await h.server.until(
      () => h.server.requests({ resource: 'services', verb: 'watch' }).length === 2 && h.server.watchCount('services') === 1,
      'the re-watch',
    );
    expect(h.server.requests({ resource: 'services', verb: 'watch' })[1]!.query['resourceVersion']).toBe(String(rv));
    h.server.update('services', svc('api', { port: 81 }));
    await rec.until(() => rec.log.includes('update Service default/api'), 'api updated');
    expect(h.server.requests({ resource: 'services', verb: 'list' })).toHaveLength(1);
    expect(rec.log.filter((l) => l.includes('Service'))).toEqual([
      'add Service default/web',
      'synced Service',
      'add Service default/api',
      'update Service default/api',
    ]);
  });

  it('resumes from a bookmark, so history compacted behind it costs no relist', async () => {
    h.seed();
    const rec = recorder();
    await h.startSource(rec);
    await h.server.until(() => h.server.watchCount() === 3, 'three watches');
    for (let i = 0; i < 3; i++)
      h.server.create('services', svc(`hidden${i}`, { clusterIP: 'None', labels: { 'service.kubernetes.io/headless': '' } }));
    h.server.bookmark('services');
    h.server.compact();
    // The bookmark reaches the client before the end of the stream, on the same connection.
    h.server.dropWatches('services');
    await h.server.until(
      () => h.server.requests({ resource: 'services', verb: 'watch' }).length === 2 && h.server.watchCount('services') === 1,
      'the re-watch',
    );
    expect(h.server.requests({ resource: 'services', verb: 'watch' })[1]!.query['resourceVersion']).toBe(String(h.server.resourceVersion));
    expect(h.server.requests({ resource: 'services', verb: 'list' })).toHaveLength(1);
  });

  for (const mode of ['in-stream', 'http'] as const) {
    it(`relists after an expired resourceVersion (${mode} 410) and reconciles adds, updates and deletes`, async () => {
      h.server.expiredWatch = mode;
      h.seed();
      h.server.create('services', svc('gone'));
      const rec = recorder();
      await h.startSource(rec);
      await h.server.until(() => h.server.watchCount() === 3, 'three watches');
      // Synchronous: the client cannot re-watch before all of this is done.
      h.server.dropWatches('services');
      h.server.delete('services', 'default/gone');
      h.server.update('services', svc('web', { port: 8443 }));
      h.server.create('services', svc('new'));
      h.server.compact();
      await rec.until(() => rec.synced('Service') === 2, 'the relist');
      expect(h.server.requests({ resource: 'services', verb: 'list' })).toHaveLength(2);
      expect(rec.log.filter((l) => l.includes('Service')).slice(3)).toEqual([
        'delete Service default/gone',
        'add Service default/new',
        'update Service default/web',
        'synced Service',
      ]);
      const upd = rec.events.find((e) => e.type === 'update')!;
      expect(upd.old).toMatchObject({ spec: { ports: [{ port: 80 }] } });
      expect(rec.problems).toEqual([]);
    });
  }

  it('reports a failed initial list, retries with backoff, and claims synced only after a list succeeded', async () => {
    h.seed();
    h.server.failNext('endpointslices', 'list', 503, 2);
    const rec = recorder();
    await h.startSource(rec);
    expect(rec.synced('EndpointSlice')).toBe(0);
    expect(rec.problems[0]).toMatch(
      /^EndpointSlice: EndpointSlice informer failed: HTTP 503: injected failure for list endpointslices; restarting in 100 ms$/,
    );
    await rec.until(() => rec.synced('EndpointSlice') === 1, 'EndpointSlice synced', 3000);
    const lists = h.server.requests({ resource: 'endpointslices', verb: 'list' });
    expect(lists).toHaveLength(3);
    expect(lists[1]!.at - lists[0]!.at).toBeGreaterThanOrEqual(95);
    expect(lists[2]!.at - lists[1]!.at).toBeGreaterThanOrEqual(195);
    expect(rec.log.filter((l) => l.includes('EndpointSlice'))).toEqual(['add EndpointSlice default/web-abc', 'synced EndpointSlice']);
    // The same failure again within 30 s is held back (counted into the next report), so an outage does not flood the log.
    expect(rec.problems).toHaveLength(1);
  });

  it('restarts after a watch answered with HTTP 500, relists and reconciles', async () => {
    h.seed();
    const rec = recorder();
    await h.startSource(rec);
    await h.server.until(() => h.server.watchCount() === 3, 'three watches');
    h.server.failNext('nodes', 'watch', 500);
    h.server.dropWatches('nodes');
    h.server.update('nodes', { ...node('node-1'), spec: { podCIDR: '10.244.9.0/24' } });
    await rec.until(() => rec.synced('Node') === 2, 'the Node relist');
    expect(rec.problems.some((p) => p.startsWith('Node: Node informer failed: HTTP 500'))).toBe(true);
    expect(rec.log.filter((l) => l.includes('Node'))).toEqual(['add Node node-1', 'synced Node', 'update Node node-1', 'synced Node']);
  });

  // client-go's reflector (watchHandler) ends a watch on an ERROR event, and its StreamWatcher ends one on an event it
  // cannot decode (as an ERROR "unable to decode an event from the watch stream"); the informer then lists again. The
  // change in place of which the server sent it is in that list: a watch that went on would never see it.
  const lostChanges = [
    {
      what: 'an ERROR event (500, as the etcd3 watcher sends for an object it cannot transform)',
      raw: `${JSON.stringify({ type: 'ERROR', object: statusObject(500, 'unable to transform key "/registry/services/specs/default/api": KMS unavailable') })}\n`,
      problem: /^Service: Service informer failed: HTTP 500 in the watch stream: unable to transform key/,
    },
    {
      what: 'a line that does not decode',
      raw: '{"type":"DELETED","object":{"kind":"Service","metadata":\n',
      problem: /^Service: Service informer failed: unable to decode an event from the watch stream: /,
    },
  ];
  for (const c of lostChanges)
    it(`lists again after ${c.what} in the watch stream (reflector watchHandler), so the change it stands for is not lost`, async () => {
      h.seed();
      h.server.create('services', svc('api'));
      const rec = recorder();
      await h.startSource(rec);
      await h.server.until(() => h.server.watchCount() === 3, 'three watches');
      h.server.failNextEvent('services', c.raw);
      h.server.delete('services', 'default/api');
      // Later changes reach the watch as usual, past the lost one.
      h.server.create('services', svc('later'));
      await rec.until(() => rec.log.includes('delete Service default/api'), 'the lost delete', 3000);
      expect(rec.log.filter((l) => l.includes('Service')).sort()).toEqual(
        [
          'add Service default/web',
          'add Service default/api',
          'synced Service',
          'add Service default/later',
          'delete Service default/api',
          'synced Service',
        ].sort(),
      );
      expect(h.server.requests({ resource: 'services', verb: 'list' })).toHaveLength(2);
      expect(rec.problems.some((p) => c.problem.test(p))).toBe(true);
    });

  // client-go's reflector lists through its pager with no deadline for the whole list (the API server bounds each
  // request, --request-timeout 60 s): a large cluster's list from a loaded API server takes as long as its pages do.
  // Nor does its watchdog (here: no connect or event for staleAfterMs) take a list whose pages keep coming for stuck.
  // (Paged: an API server without a watch cache, which pages even the first list, at resourceVersion 0.)
  it('completes a paged list that takes longer in all than the list timeout and the watchdog, each page answered within them', async () => {
    h.server.watchCache = false;
    h.seed();
    for (let i = 0; i < 9; i++) h.server.create('services', svc(`s${i}`));
    h.server.delayLists('services', 150);
    const rec = recorder();
    await h.startSource(rec, { listPageSize: 2, listTimeoutMs: 400, staleAfterMs: 500 });
    await rec.until(() => rec.synced('Service') === 1, 'the Services listed', 4000);
    expect(h.server.requests({ resource: 'services', verb: 'list' })).toHaveLength(5);
    expect(rec.log.filter((l) => l.startsWith('add Service'))).toHaveLength(10);
    // (The other informers' quiet watches do trip a watchdog this short.)
    expect(rec.problems.filter((p) => p.startsWith('Service:'))).toEqual([]);
  });

  it('gives up on a list page that is not answered within the list timeout, and lists again', async () => {
    h.seed();
    h.server.delayLists('services', 600);
    const rec = recorder();
    await h.startSource(rec, { listTimeoutMs: 200 });
    await rec.until(() => rec.problems.length > 0, 'the timeout');
    expect(rec.problems[0]).toMatch(/^Service: Service informer failed: list timed out after 200 ms; restarting in 100 ms$/);
    h.server.delayLists('services', 0);
    await rec.until(() => rec.synced('Service') === 1, 'the Services listed', 3000);
  });

  it('converges with the changes made while the server was down', async () => {
    h.seed();
    h.server.create('endpointslices', slice('web-old'));
    const rec = recorder();
    await h.startSource(rec);
    await h.server.until(() => h.server.watchCount() === 3, 'three watches');
    await h.server.down();
    await rec.until(() => rec.problems.length >= 3, 'all three informers to notice');
    h.server.delete('endpointslices', 'default/web-old');
    h.server.create('endpointslices', slice('web-new'));
    h.server.update('services', svc('web', { port: 81 }));
    // Restarts keep failing while down (the harness's back-off is 100-400 ms; repeated identical reports are held back).
    await new Promise((r) => setTimeout(r, 1000));
    await h.server.up();
    const changes = (): string[] => rec.log.slice(rec.log.indexOf('synced Node') + 1).filter((l) => !l.startsWith('synced') && !l.includes('Node'));
    await rec.until(() => changes().length === 3, 'the three changes', 4000);
    await h.server.until(() => h.server.watchCount() === 3, 'three watches again');
    expect(changes().sort()).toEqual(['add EndpointSlice default/web-new', 'delete EndpointSlice default/web-old', 'update Service default/web']);
    // The server still had the history: the refused watches were asked again from their resourceVersion (no relist).
    expect(h.server.requests({ verb: 'list' })).toHaveLength(3);
  });

  it('survives handlers that throw: no crash, no unhandled rejection, events keep flowing', async () => {
    h.seed();
    const rec = recorder({ throwing: true });
    await h.startSource(rec);
    await rec.until(() => rec.synced('Service') === 1, 'Service synced');
    h.server.create('services', svc('api'));
    h.server.delete('services', 'default/api');
    await rec.until(() => rec.log.includes('delete Service default/api'), 'the delete');
    expect(rec.problems.some((p) => p.includes('handler threw'))).toBe(true);
    expect(rec.problems.some((p) => p.includes('informer failed'))).toBe(false);
  });

  it('stop() closes every watch and makes no further requests', async () => {
    h.seed();
    const rec = recorder();
    const source = await h.startSource(rec);
    await h.server.until(() => h.server.watchCount() === 3, 'three watches');
    await source.stop();
    await h.server.until(() => h.server.watchCount() === 0, 'watches closed');
    const count = h.server.requests().length;
    h.server.create('services', svc('late'));
    await h.server.down();
    await h.server.up();
    expect(h.server.requests()).toHaveLength(count);
    expect(rec.log).not.toContain('add Service default/late');
  });
});
