/**
 * The optional ServiceCIDR informer (the nftables mode; upstream server.go
 * starts it when MultiCIDRServiceAllocator is on) against the fake API
 * server: events, upstream's label selector, retained fields, and what an
 * API server that does not serve ServiceCIDRs (before 1.33) or a role that
 * does not grant them does to it: counted as listed, reported, asked again
 * slowly, never holding up the other kinds.
 */
import { describe, expect, it } from 'vitest';
import { makeServiceCIDR } from '../../test/builders.ts';
import type { KubeObject } from '../../test/fake-apiserver.ts';
import { recorder, useApiSourceHarness } from '../../test/api-source-harness.ts';
import { SERVICE_LABEL_SELECTOR } from './api-source.ts';

const h = useApiSourceHarness();
const cidr = (name: string, cidrs: string[]): KubeObject => {
  const { metadata, spec } = makeServiceCIDR(name, cidrs) as KubeObject;
  return { metadata, spec, status: { conditions: [{ type: 'Ready', status: 'True' }] } };
};
const synced3 = (rec: ReturnType<typeof recorder>) => rec.synced('Service') + rec.synced('EndpointSlice') + rec.synced('Node') === 3;

describe('api source: ServiceCIDRs (upstream NewServiceCIDRConfig)', () => {
  it('lists and watches them with upstream label selector, passing adds, updates and deletes on without their status', async () => {
    h.seed();
    h.server.create('servicecidrs', cidr('kubernetes', ['10.96.0.0/12', 'fd00:10:96::/112']));
    const rec = recorder();
    await h.startSource(rec, { serviceCIDRs: true });
    await rec.until(() => synced3(rec) && rec.synced('ServiceCIDR') === 1, 'four kinds synced');
    expect(rec.log.filter((l) => l.includes('ServiceCIDR'))).toEqual(['add ServiceCIDR kubernetes', 'synced ServiceCIDR']);
    const added = rec.events.find((e) => e.kind === 'ServiceCIDR')!;
    expect(added.obj).toMatchObject({
      kind: 'ServiceCIDR',
      apiVersion: 'networking.k8s.io/v1',
      spec: { cidrs: ['10.96.0.0/12', 'fd00:10:96::/112'] },
    });
    expect(added.obj).not.toHaveProperty('status');
    expect(h.server.requests({ resource: 'servicecidrs', verb: 'list' })[0]!.query['labelSelector']).toBe(SERVICE_LABEL_SELECTOR);

    await h.server.until(() => h.server.watchCount() === 4, 'four watches');
    h.server.create('servicecidrs', cidr('extra', ['10.200.0.0/16']));
    h.server.update('servicecidrs', cidr('extra', ['10.200.0.0/16', '10.201.0.0/16']));
    h.server.delete('servicecidrs', 'kubernetes');
    await rec.until(() => rec.events.filter((e) => e.kind === 'ServiceCIDR').length === 4, 'three more ServiceCIDR events');
    expect(rec.log.filter((l) => l.includes('ServiceCIDR')).slice(2)).toEqual([
      'add ServiceCIDR extra',
      'update ServiceCIDR extra',
      'delete ServiceCIDR kubernetes',
    ]);
    expect(rec.problems).toEqual([]);
  });

  it('does not ask for them unless told to (the iptables and userspace modes do not use them)', async () => {
    h.seed();
    const rec = recorder();
    await h.startSource(rec);
    await rec.until(() => synced3(rec), 'three kinds synced');
    await h.server.until(() => h.server.watchCount() === 3, 'three watches');
    expect(h.server.requests({ resource: 'servicecidrs' })).toEqual([]);
  });

  it('on an API server that does not serve them (404): counts them listed at once, says why once, asks again only after the long delay, and picks them up when served', async () => {
    h.seed();
    h.server.servesServiceCIDRs = false;
    const rec = recorder();
    await h.startSource(rec, { serviceCIDRs: true, optionalRetryMs: 1500 });
    await rec.until(() => synced3(rec) && rec.synced('ServiceCIDR') === 1, 'four kinds synced');
    await rec.until(() => rec.problems.length === 1, 'one problem');
    expect(rec.problems[0]).toBe(
      'ServiceCIDR: ServiceCIDR informer: this API server does not serve networking.k8s.io/v1 ServiceCIDRs (HTTP 404, Kubernetes before 1.33?); ' +
        'traffic to unallocated ClusterIPs is not dropped; asking again in 2 s',
    );
    const served = (): number => h.server.requests().filter((r) => r.path === '/apis/networking.k8s.io/v1/servicecidrs').length;
    // The ordinary backoff (0.1-0.4 s here) would have asked three times by now.
    await new Promise((r) => setTimeout(r, 1000));
    expect(served()).toBe(1);

    h.server.servesServiceCIDRs = true;
    h.server.create('servicecidrs', cidr('kubernetes', ['10.96.0.0/12']));
    await rec.until(() => rec.log.includes('add ServiceCIDR kubernetes'), 'the ServiceCIDR once served');
    expect(rec.synced('ServiceCIDR')).toBe(2);
    // The other informers never noticed.
    expect(rec.synced('Service') + rec.synced('EndpointSlice') + rec.synced('Node')).toBe(3);
  });

  it('without the RBAC grant (403): names the grant, keeps what it knew, and recovers when granted', async () => {
    h.seed();
    h.server.create('servicecidrs', cidr('kubernetes', ['10.96.0.0/12']));
    const rec = recorder();
    h.server.failNext('servicecidrs', 'list', 403);
    await h.startSource(rec, { serviceCIDRs: true, optionalRetryMs: 300 });
    await rec.until(() => rec.synced('ServiceCIDR') === 1 && synced3(rec), 'four kinds synced');
    expect(rec.events.filter((e) => e.kind === 'ServiceCIDR')).toEqual([]);
    expect(rec.problems).toEqual([
      'ServiceCIDR: ServiceCIDR informer: the role does not grant list and watch on servicecidrs.networking.k8s.io (HTTP 403; see the ClusterRole in manifests/kube-proxy-ts.yaml); ' +
        'traffic to unallocated ClusterIPs is not dropped; asking again in 300 ms',
    ]);
    await rec.until(() => rec.log.includes('add ServiceCIDR kubernetes'), 'the ServiceCIDR once granted');
  });
});
