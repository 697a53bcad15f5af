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
import { createLogger } from '../log.ts';
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
      'ServiceCIDR: ServiceCIDR informer: this API server does not serve ServiceCIDRs as networking.k8s.io/v1 or networking.k8s.io/v1beta1 ' +
        '(HTTP 404; v1 from Kubernetes 1.33, v1beta1 in 1.31-1.32 with MultiCIDRServiceAllocator on); ' +
        'traffic to unallocated ClusterIPs is not dropped; asking again in 2 s',
    );
    const served = (): number => h.server.requests().filter((r) => r.path === '/apis/networking.k8s.io/v1/servicecidrs').length;
    // The ordinary backoff (0.1-0.4 s here) would have asked three times by now; v1beta1 was asked once too.
    await new Promise((r) => setTimeout(r, 1000));
    expect(served()).toBe(1);
    expect(h.server.requests().filter((r) => r.path === '/apis/networking.k8s.io/v1beta1/servicecidrs').length).toBe(1);

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

  it('on a 1.31-1.32 API server (v1beta1 only, as upstream kube-proxy of those releases watches them): lists and watches v1beta1, and says so once', async () => {
    h.seed();
    h.server.serviceCIDRVersions = ['networking.k8s.io/v1beta1'];
    h.server.create('servicecidrs', cidr('kubernetes', ['10.96.0.0/12']));
    let logged = '';
    const rec = recorder();
    await h.startSource(rec, {
      serviceCIDRs: true,
      logger: createLogger({ verbosity: 0, stream: { write: (s: string) => void (logged += s) } }),
    });
    await rec.until(() => rec.log.includes('add ServiceCIDR kubernetes') && synced3(rec), 'the v1beta1 ServiceCIDR');
    expect(rec.events.find((e) => e.kind === 'ServiceCIDR')!.obj).toMatchObject({
      apiVersion: 'networking.k8s.io/v1beta1',
      spec: { cidrs: ['10.96.0.0/12'] },
    });
    expect(rec.problems).toEqual([]);
    expect(logged).toContain(
      '"ServiceCIDR informer: this API server serves ServiceCIDRs as networking.k8s.io/v1beta1: listing and watching those" component="api-source" kind="ServiceCIDR"',
    );
    await h.server.until(() => h.server.watchCount('servicecidrs') === 1, 'the ServiceCIDR watch');
    const paths = h.server.requests({ resource: 'servicecidrs' }).map((r) => `${r.verb} ${r.path} ${r.status}`);
    expect(paths).toEqual([
      'list /apis/networking.k8s.io/v1beta1/servicecidrs 200',
      'list /apis/networking.k8s.io/v1beta1/servicecidrs 200',
      'watch /apis/networking.k8s.io/v1beta1/servicecidrs 200',
    ]);
    // The v1 list, answered 404, is not a servicecidrs request to the fake: it does not serve that path.
    expect(
      h.server
        .requests()
        .filter((r) => r.path === '/apis/networking.k8s.io/v1/servicecidrs')
        .map((r) => r.status),
    ).toEqual([404]);

    h.server.update('servicecidrs', cidr('kubernetes', ['10.96.0.0/12', '10.100.0.0/16']));
    await rec.until(() => rec.log.includes('update ServiceCIDR kubernetes'), 'the update through the v1beta1 watch');

    // Upgraded to a release that serves v1 only: the informer's next list (here after its watch is cut) goes back to v1.
    h.server.serviceCIDRVersions = ['networking.k8s.io/v1'];
    h.server.dropWatches('servicecidrs');
    h.server.create('servicecidrs', cidr('extra', ['10.200.0.0/16']));
    await rec.until(() => rec.log.includes('add ServiceCIDR extra'), 'the v1 ServiceCIDR after the upgrade');
    await h.server.until(() => h.server.watchCount('servicecidrs') === 1, 'the v1 watch');
    expect(h.server.requests({ resource: 'servicecidrs', verb: 'watch' }).at(-1)!.path).toBe('/apis/networking.k8s.io/v1/servicecidrs');
    // The cut watch, resumed on v1beta1, was answered 404: one warning, then the ordinary backoff (not the long delay).
    expect(rec.problems).toEqual([
      'ServiceCIDR: ServiceCIDR informer: this API server no longer serves ServiceCIDRs as networking.k8s.io/v1beta1 (HTTP 404); keeping what was listed, listing again in 100 ms',
    ]);
    expect(rec.log.filter((l) => l.startsWith('delete ServiceCIDR'))).toEqual([]);
    expect(logged).toContain('serves ServiceCIDRs as networking.k8s.io/v1: listing and watching those');
  });
});
