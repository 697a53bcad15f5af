/**
 * Generation B (upstream v1.36+, AustinAbro321/kubernetes proxier.go @ 129058fc;
 * reference nftables-mode.md §1.10): the fixed part of setupNFTables and the
 * per-service objects of syncProxyRules, writeServiceToEndpointDNATs and
 * writeServiceToEndpointJumps, with `generation: 'B'`. B is the default; A (upstream v1.33-1.35) is an option.
 */
import { describe, expect, it } from 'vitest';
import { makeEndpointSlice, makeService } from '../test/builders.ts';
import { upstreamOverallObjects } from '../test/upstream-overall.case.ts';
import type { IPFamily } from '../proxier/types.ts';
import { endpointNames, servicePortNames } from './names.ts';
import { planFullSync } from './full-sync.ts';
import { planPartialSync } from './partial-sync.ts';
import { renderNftables, tableOf, type NftRenderOptions } from './render.ts';
import { upstreamOptions, upstreamSnapshot, TEST_NODE } from './upstream.case.ts';
import type { NftTable } from './model.ts';

const B = (family: IPFamily, over: Partial<NftRenderOptions> = {}) => upstreamOptions(family, { generation: 'B', ...over });
const rules = (t: NftTable, chain: string) => t.chains.find((c) => c.name === chain)?.rules;
const elements = (t: NftTable, set: string) => t.sets.find((s) => s.name === set)?.elements?.map((e) => e.key);
const names = (ns: string, svc: string) => servicePortNames({ namespace: ns, name: svc, portName: 'p80', protocol: 'TCP' });
const ep = (ns: string, svc: string, ip: string) => endpointNames({ namespace: ns, name: svc, portName: 'p80', protocol: 'TCP' }, { ip, port: 80 });
const slice = (ns: string, svc: string, endpoints: { ip: string; nodeName?: string }[]) =>
  makeEndpointSlice(ns, svc, { endpoints, ports: [{ name: 'p80', port: 80, protocol: 'TCP' }] });

function table(family: IPFamily, services: unknown[], slices: unknown[], over: Partial<NftRenderOptions> = {}): NftTable {
  return tableOf(renderNftables(upstreamSnapshot(family, services, slices), B(family, over)));
}

describe('generation B fixed objects (upstream setupNFTables, v1.36+)', () => {
  it('has no mark-for-masquerade chain, masquerades in two rules and declares hairpin-connections', () => {
    const t = table('IPv4', [], []);
    expect(t.chains.map((c) => c.name)).not.toContain('mark-for-masquerade');
    expect(rules(t, 'masquerading')).toEqual([
      'mark and 0x00004000 != 0 mark set mark xor 0x00004000 masquerade fully-random',
      'ct status dnat ip saddr . ip daddr . meta l4proto . th dport @hairpin-connections masquerade fully-random',
    ]);
    const hairpin = t.sets.find((s) => s.name === 'hairpin-connections')!;
    expect(hairpin).toMatchObject({ kind: 'set', type: 'ipv4_addr . ipv4_addr . inet_proto . inet_service', comment: 'service hairpin connections' });
    expect(hairpin.elements).toEqual([]);
  });

  it('writes the ClusterIP masquerade rule first in services: traffic not from a pod, or all of it with masquerade-all', () => {
    expect(rules(table('IPv4', [], []), 'services')).toEqual([
      'ip daddr @cluster-ips ip saddr != 10.0.0.0/8 mark set mark or 0x00004000 comment "masquerade clusterIP traffic from outside cluster"',
      'ip daddr . meta l4proto . th dport vmap @service-ips',
      'ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports',
    ]);
    expect(rules(table('IPv4', [], [], { masqueradeAll: true }), 'services')![0]).toBe(
      'ip daddr @cluster-ips mark set mark or 0x00004000 comment "masquerade all clusterIP traffic"',
    );
    // No local-traffic detector: no rule (upstream: localDetector.IsImplemented() false).
    expect(rules(table('IPv4', [], [], { detectLocal: null }), 'services')).toEqual([
      'ip daddr . meta l4proto . th dport vmap @service-ips',
      'ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports',
    ]);
  });

  it('writes generation B by default, and A (upstream v1.33-1.35) when asked', () => {
    const t = tableOf(renderNftables(upstreamSnapshot('IPv4', [], []), upstreamOptions('IPv4')));
    expect(t.chains.map((c) => c.name)).not.toContain('mark-for-masquerade');
    expect(t.sets.map((s) => s.name)).toContain('hairpin-connections');
    expect(t).toEqual(table('IPv4', [], []));
    const a = tableOf(renderNftables(upstreamSnapshot('IPv4', [], []), upstreamOptions('IPv4', { generation: 'A' })));
    expect(rules(a, 'mark-for-masquerade')).toEqual(['mark set mark or 0x00004000']);
    expect(a.sets.map((s) => s.name)).not.toContain('hairpin-connections');
    expect(rules(a, 'masquerading')).toEqual(['mark and 0x00004000 == 0 return', 'mark set mark xor 0x00004000', 'masquerade fully-random']);
  });
});

describe('generation B service ports (upstream syncProxyRules, writeServiceToEndpointDNATs)', () => {
  it('ClusterIP: the policy chain DNATs through a numgen map, no endpoint chains, a hairpin element per local endpoint', () => {
    const svc = makeService('ns1', 'svc1', { clusterIP: '172.30.0.41' });
    const t = table('IPv4', [svc], [slice('ns1', 'svc1', [{ ip: '10.180.0.1' }, { ip: '10.180.0.2', nodeName: TEST_NODE }])]);
    const n = names('ns1', 'svc1');
    expect(n.service).toBe('service-ULMVA6XW-ns1/svc1/tcp/p80');
    expect(rules(t, n.service)).toEqual([
      'meta l4proto tcp dnat ip addr . port to numgen random mod 2 map { 0 : 10.180.0.1 . 80 , 1 : 10.180.0.2 . 80 }',
    ]);
    expect(t.chains.filter((c) => c.name.startsWith('endpoint-'))).toEqual([]);
    expect(elements(t, 'hairpin-connections')).toEqual(['10.180.0.2 . 10.180.0.2 . tcp . 80']);
    expect(elements(t, 'service-ips')).toEqual(['172.30.0.41 . tcp . 80']);
  });

  it('keeps the map for one endpoint (mod 1), as the reference quotes; #140723 (map-less) is not followed', () => {
    const { services, slices } = upstreamOverallObjects();
    const t = table('IPv4', services, slices);
    expect(rules(t, 'service-ULMVA6XW-ns1/svc1/tcp/p80')).toEqual([
      'meta l4proto tcp dnat ip addr . port to numgen random mod 1 map { 0 : 10.180.0.1 . 80 }',
    ]);
    // The overall fixture's one local endpoint (ns4/svc4's 10.180.0.5) is the one hairpin element.
    expect(elements(t, 'hairpin-connections')).toEqual(['10.180.0.5 . 10.180.0.5 . tcp . 80']);
  });

  it('eTP Cluster: the external chain marks inline with comment "masquerade", then goes to the service chain', () => {
    const svc = makeService('ns3', 'svc3', { type: 'NodePort', clusterIP: '172.30.0.43', ports: [{ name: 'p80', port: 80, nodePort: 3003 }] });
    const t = table('IPv4', [svc], [slice('ns3', 'svc3', [{ ip: '10.180.0.3' }])]);
    const n = names('ns3', 'svc3');
    expect(rules(t, n.external)).toEqual(['mark set mark or 0x00004000 comment "masquerade"', `goto ${n.service}`]);
  });

  it('eTP Local: short-circuits pod and host traffic, marks host traffic inline, and DNATs local endpoints from local-', () => {
    const svc = makeService('ns2', 'svc2', {
      type: 'LoadBalancer',
      externalTrafficPolicy: 'Local',
      clusterIP: '172.30.0.42',
      ports: [{ name: 'p80', port: 80, nodePort: 3001 }],
      ingress: [{ ip: '1.2.3.4' }],
      healthCheckNodePort: 30000,
    });
    const t = table('IPv4', [svc], [slice('ns2', 'svc2', [{ ip: '10.180.0.2' }, { ip: '10.180.0.3', nodeName: TEST_NODE }])]);
    const n = names('ns2', 'svc2');
    expect(rules(t, n.external)).toEqual([
      `ip saddr 10.0.0.0/8 goto ${n.service} comment "short-circuit pod traffic"`,
      'fib saddr type local mark set mark or 0x00004000 comment "masquerade local traffic"',
      `fib saddr type local goto ${n.service} comment "short-circuit local traffic"`,
      `goto ${n.local}`,
    ]);
    expect(rules(t, n.local)).toEqual(['meta l4proto tcp dnat ip addr . port to numgen random mod 1 map { 0 : 10.180.0.3 . 80 }']);
    expect(rules(t, n.service)).toEqual([
      'meta l4proto tcp dnat ip addr . port to numgen random mod 2 map { 0 : 10.180.0.2 . 80 , 1 : 10.180.0.3 . 80 }',
    ]);
    expect(elements(t, 'hairpin-connections')).toEqual(['10.180.0.3 . 10.180.0.3 . tcp . 80']);
  });

  it('ClientIP affinity keeps endpoint chains (update, DNAT; no hairpin rule) behind the affinity gotos and the vmap (writeServiceToEndpointJumps)', () => {
    const svc = makeService('ns5', 'svc5', { clusterIP: '172.30.0.45', sessionAffinity: 'ClientIP', sessionAffinityTimeout: 10800 });
    const t = table('IPv4', [svc], [slice('ns5', 'svc5', [{ ip: '10.180.0.3', nodeName: TEST_NODE }])]);
    const n = names('ns5', 'svc5');
    const e = ep('ns5', 'svc5', '10.180.0.3');
    expect(rules(t, n.service)).toEqual([`ip saddr @${e.affinitySet} goto ${e.chain}`, `numgen random mod 1 vmap { 0 : goto ${e.chain} }`]);
    expect(rules(t, e.chain)).toEqual([`update @${e.affinitySet} { ip saddr }`, 'meta l4proto tcp dnat to 10.180.0.3:80']);
    expect(t.sets.find((s) => s.name === e.affinitySet)).toMatchObject({ flags: ['dynamic', 'timeout'], timeout: 10800 });
    expect(elements(t, 'hairpin-connections')).toEqual(['10.180.0.3 . 10.180.0.3 . tcp . 80']);
  });

  it('--traffic-counters (ours, not upstream) keeps endpoint chains, whose DNAT counts into their counter', () => {
    const svc = makeService('ns1', 'svc1', { clusterIP: '172.30.0.41' });
    const t = table('IPv4', [svc], [slice('ns1', 'svc1', [{ ip: '10.180.0.1' }])], { trafficCounters: true });
    const e = ep('ns1', 'svc1', '10.180.0.1');
    expect(rules(t, 'service-ULMVA6XW-ns1/svc1/tcp/p80')).toEqual([`numgen random mod 1 vmap { 0 : goto ${e.chain} }`]);
    expect(rules(t, e.chain)).toEqual([`meta l4proto tcp counter name "${e.chain}" dnat to 10.180.0.1:80`]);
    expect(t.counters).toEqual([e.chain]);
  });

  it('IPv6: ip6 addr . port in the map, addresses without brackets, ip6 in the hairpin rule and elements', () => {
    const svc = makeService('ns1', 'svc1', { clusterIP: 'fd00:10:96::41' });
    const slices = [
      makeEndpointSlice('ns1', 'svc1', { endpoints: [{ ip: 'fd00:10:180::1', nodeName: TEST_NODE }], ports: [{ name: 'p80', port: 80 }] }),
    ];
    const t = table('IPv6', [svc], slices);
    expect(rules(t, 'service-ULMVA6XW-ns1/svc1/tcp/p80')).toEqual([
      'meta l4proto tcp dnat ip6 addr . port to numgen random mod 1 map { 0 : fd00:10:180::1 . 80 }',
    ]);
    expect(elements(t, 'hairpin-connections')).toEqual(['fd00:10:180::1 . fd00:10:180::1 . tcp . 80']);
    expect(rules(t, 'masquerading')![1]).toBe(
      'ct status dnat ip6 saddr . ip6 daddr . meta l4proto . th dport @hairpin-connections masquerade fully-random',
    );
    expect(t.sets.find((s) => s.name === 'hairpin-connections')!.type).toBe('ipv6_addr . ipv6_addr . inet_proto . inet_service');
    expect(rules(t, 'services')![0]).toBe(
      'ip6 daddr @cluster-ips ip6 saddr != fd00:10::/64 mark set mark or 0x00004000 comment "masquerade clusterIP traffic from outside cluster"',
    );
  });
});

describe('generation B syncs', () => {
  it('a full sync flushes hairpin-connections with the other service-filled sets', () => {
    const render = renderNftables(upstreamSnapshot('IPv4', [], []), B('IPv4'));
    expect(planFullSync(render, { now: 0, live: null, recreateBaseChains: false }).text).toContain('flush set ip kube-proxy hairpin-connections\n');
  });

  it('an endpoint leaving rewrites the policy chain alone and leaves its hairpin element to the stale cleanup; no chain goes stale', () => {
    const svc = makeService('ns1', 'svc1', { clusterIP: '172.30.0.41' });
    const two = [slice('ns1', 'svc1', [{ ip: '10.180.0.1' }, { ip: '10.180.0.2', nodeName: TEST_NODE }])];
    const one = [slice('ns1', 'svc1', [{ ip: '10.180.0.1' }])];
    const before = renderNftables(upstreamSnapshot('IPv4', [svc], two), B('IPv4'));
    const applied = planFullSync(before, { now: 0, live: null, recreateBaseChains: false }).next;
    const plan = planPartialSync(renderNftables(upstreamSnapshot('IPv4', [svc], one), B('IPv4')), applied, 5000);
    expect(plan.rewritten).toEqual(['service-ULMVA6XW-ns1/svc1/tcp/p80']);
    expect(plan.text).not.toContain('delete');
    expect([...plan.next.staleElements.keys()]).toEqual(['hairpin-connections\u000010.180.0.2 . 10.180.0.2 . tcp . 80']);
    expect(plan.text).toContain('numgen random mod 1 map { 0 : 10.180.0.1 . 80 }');
    expect([...plan.next.stale.keys()]).toEqual([]);
  });
});
