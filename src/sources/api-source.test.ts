/**
 * The API source with the real client-node informers against the fake API
 * server: initial sync, event flow with old objects, selectors on the wire,
 * client-side filtering, no-op updates. Failure handling is in
 * api-source-resilience.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { FakeApiServer, type KubeObject } from '../../test/fake-apiserver.ts';
import { node, recorder, slice, svc, useApiSourceHarness } from '../../test/api-source-harness.ts';

const h = useApiSourceHarness();

describe('api source', () => {
  it('lists all three kinds, emits adds with plain-JSON objects, then synced', async () => {
    h.seed();
    const rec = recorder();
    await h.startSource(rec);
    await rec.until(() => rec.synced('Service') + rec.synced('EndpointSlice') + rec.synced('Node') === 3, 'three synced');
    const order = (kind: string): string[] => rec.log.filter((l) => l.endsWith(kind) || l.includes(` ${kind} `));
    expect(order('Service')).toEqual(['add Service default/web', 'synced Service']);
    expect(order('EndpointSlice')).toEqual(['add EndpointSlice default/web-abc', 'synced EndpointSlice']);
    expect(order('Node')).toEqual(['add Node node-1', 'synced Node']);
    const web = rec.events.find((e) => e.key === 'default/web')!;
    expect(web.old).toBeNull();
    expect(web.obj).toMatchObject({ kind: 'Service', apiVersion: 'v1', spec: { clusterIP: '10.96.0.10' } });
    // Only the fields the agent reads are kept (retained-fields.ts): no creationTimestamp.
    expect((web.obj as KubeObject).metadata).not.toHaveProperty('creationTimestamp');
    expect(typeof (web.obj as KubeObject).metadata.resourceVersion).toBe('string');
    expect(rec.problems).toEqual([]);
  });

  it('passes creates, updates and deletes through with the previous object', async () => {
    h.seed();
    const rec = recorder();
    await h.startSource(rec);
    await rec.until(() => rec.synced('Service') === 1, 'Service synced');
    const apiSvc = svc('api');
    h.server.create('services', { ...apiSvc, metadata: { ...apiSvc.metadata, managedFields: [{ manager: 'kubectl', operation: 'Update' }] } });
    const v1 = h.server.get('services', 'default/web')!;
    const v2 = h.server.update('services', svc('web', { port: 8080 }));
    h.server.delete('services', 'default/api');
    await rec.until(() => rec.events.length === 6, 'three more events');
    const [add, upd, del] = rec.events.slice(3);
    expect(add).toMatchObject({ type: 'add', kind: 'Service', key: 'default/api', old: null });
    expect((add!.obj as KubeObject).metadata).not.toHaveProperty('managedFields'); // trimmed on the watch path too
    expect(upd).toMatchObject({
      type: 'update',
      key: 'default/web',
      old: { metadata: { resourceVersion: v1.metadata.resourceVersion } },
      obj: { metadata: { resourceVersion: v2.metadata.resourceVersion }, spec: { ports: [{ port: 8080 }] } },
    });
    expect(del).toMatchObject({ type: 'delete', key: 'default/api', old: { metadata: { name: 'api' } }, obj: null });
  });

  it('sends the selectors on every list and watch', async () => {
    h.seed();
    const rec = recorder();
    await h.startSource(rec);
    await h.server.until(() => h.server.watchCount() === 3, 'three watches');
    const q = (resource: 'services' | 'endpointslices' | 'nodes', verb: 'list' | 'watch') => h.server.requests({ resource, verb })[0]!.query;
    const svcSel = '!service.kubernetes.io/headless,!service.kubernetes.io/service-proxy-name';
    expect(q('services', 'list')).toEqual({ labelSelector: svcSel, limit: '500', resourceVersion: '0' });
    expect(q('services', 'watch')).toMatchObject({
      watch: 'true',
      labelSelector: svcSel,
      allowWatchBookmarks: 'true',
      timeoutSeconds: expect.any(String),
    });
    expect(q('services', 'watch')).not.toHaveProperty('fieldSelector');
    expect(q('endpointslices', 'list')).toEqual({ labelSelector: '!service.kubernetes.io/headless', limit: '500', resourceVersion: '0' });
    expect(q('endpointslices', 'watch')).toMatchObject({ labelSelector: '!service.kubernetes.io/headless' });
    expect(q('nodes', 'list')).toEqual({ fieldSelector: 'metadata.name=node-1', limit: '500', resourceVersion: '0' });
    expect(q('nodes', 'watch')).toMatchObject({ fieldSelector: 'metadata.name=node-1' });
    expect(new Set(h.server.requests().map((r) => r.authorization))).toEqual(new Set(['Bearer fake-token']));
  });

  it('never emits headless or other-proxy Services, nor headless EndpointSlices, and deletes one that leaves the selection', async () => {
    const rec = recorder();
    h.server.create('services', svc('headless', { clusterIP: 'None' }));
    h.server.create('services', svc('other', { labels: { 'service.kubernetes.io/service-proxy-name': 'cilium' } }));
    h.server.create('services', svc('web'));
    h.server.create('endpointslices', slice('headless-x', { 'service.kubernetes.io/headless': '' }));
    await h.startSource(rec);
    await rec.until(() => rec.synced('Service') === 1 && rec.synced('EndpointSlice') === 1, 'synced');
    h.server.create('services', svc('headless2', { clusterIP: 'None' }));
    h.server.create('services', svc('other2', { labels: { 'service.kubernetes.io/service-proxy-name': 'cilium' } }));
    h.server.create('endpointslices', slice('headless2-y', { 'service.kubernetes.io/headless': '' }));
    h.server.update('services', svc('web', { labels: { 'service.kubernetes.io/service-proxy-name': 'cilium' } }));
    h.server.create('services', svc('last'));
    await rec.until(() => rec.log.includes('add Service default/last'), 'the last service');
    expect(rec.log.filter((l) => !l.startsWith('synced'))).toEqual([
      'add Service default/web',
      'delete Service default/web',
      'add Service default/last',
    ]);
  });

  it('works against an apiserver older than 1.31 (no spec.clusterIP field selector)', async () => {
    const old = await FakeApiServer.start({ legacyServiceFields: true });
    try {
      old.create('services', svc('web'));
      const rec = recorder();
      const source = await h.startSource(rec, {}, old);
      await rec.until(() => rec.synced('Service') === 1, 'Service synced');
      expect(rec.problems).toEqual([]);
      await source.stop();
    } finally {
      await old.close();
    }
  });

  it('sees only its own node', async () => {
    h.server.create('nodes', node('node-1'));
    h.server.create('nodes', node('node-2'));
    const rec = recorder();
    await h.startSource(rec);
    await rec.until(() => rec.synced('Node') === 1, 'Node synced');
    h.server.update('nodes', { ...node('node-2'), spec: { podCIDR: '10.244.2.0/24', unschedulable: true } });
    h.server.delete('nodes', 'node-2');
    h.server.update('nodes', { ...node('node-1'), spec: { podCIDR: '10.244.1.0/24', unschedulable: true } });
    await rec.until(() => rec.log.includes('update Node node-1'), 'node-1 update');
    expect(rec.log.filter((l) => l.includes('Node'))).toEqual(['add Node node-1', 'synced Node', 'update Node node-1']);
  });

  it('drops no-op updates (a new resourceVersion with the same content)', async () => {
    h.seed();
    const rec = recorder();
    await h.startSource(rec);
    await rec.until(() => rec.synced('Service') === 1, 'Service synced');
    h.server.update('services', svc('web'));
    h.server.update('services', svc('web', { port: 81 }));
    await rec.until(() => rec.log.includes('update Service default/web'), 'the real update');
    expect(rec.events.filter((e) => e.type === 'update')).toHaveLength(1);
  });
});
