import { describe, expect, it } from 'vitest';
import { conntrackArgs, staleConntrackFilters } from './conntrack-plan.ts';
import type { Endpoint, NodeInfo, ServicePort, ServicePortState, Snapshot } from './types.ts';

const node: NodeInfo = { name: 'n', known: true, addresses: [], primaryIP: null, labels: {}, zone: null, podCIDRs: [], deleting: false, toBeDeletedByAutoscaler: false };
const sp = (over: Partial<ServicePort> = {}): ServicePort => ({
  key: 'ns/dns:dns', namespace: 'ns', name: 'dns', portName: 'dns', protocol: 'UDP', clusterIP: '172.30.0.10', port: 53, nodePort: 0,
  externalIPs: [], loadBalancerVIPs: [], loadBalancerSourceRanges: [], sessionAffinityTimeout: 0, externalPolicyLocal: false,
  internalPolicyLocal: false, healthCheckNodePort: 0, trafficDistribution: null, ...over,
});
const ep = (ip: string): Endpoint => ({ ip, port: 5353, ready: true, serving: true, terminating: false, nodeName: null, zone: null, isLocal: false, zoneHints: null, nodeHints: null });
const st = (service: ServicePort, eps: Endpoint[]): ServicePortState => ({ service, endpoints: eps, selection: { cluster: eps, local: null, allReachable: eps, hasAny: eps.length > 0, topologyReason: null } });
const snap = (...services: ServicePortState[]): Snapshot => ({ family: 'IPv4', node, services });

describe('staleConntrackFilters', () => {
  it('clears entries DNATed to a removed UDP endpoint, for every service IP and the node port', () => {
    const svc = sp({ externalIPs: ['192.168.99.1'], nodePort: 30053 });
    const f = staleConntrackFilters(snap(st(svc, [ep('10.0.0.1'), ep('10.0.0.2')])), snap(st(svc, [ep('10.0.0.2')])));
    expect(f.map(conntrackArgs)).toEqual([
      ['-D', '-p', 'udp', '--orig-dst', '172.30.0.10', '--dst-nat', '10.0.0.1'],
      ['-D', '-p', 'udp', '--orig-dst', '192.168.99.1', '--dst-nat', '10.0.0.1'],
      ['-D', '-p', 'udp', '--dport', '30053', '--dst-nat', '10.0.0.1'],
    ]);
  });

  it('clears entries for a UDP service that gets its first endpoint', () => {
    const f = staleConntrackFilters(snap(st(sp(), [])), snap(st(sp(), [ep('10.0.0.1')])));
    expect(f.map(conntrackArgs)).toEqual([['-D', '-p', 'udp', '--orig-dst', '172.30.0.10']]);
  });

  it('leaves TCP services and unchanged UDP services alone', () => {
    const same = st(sp(), [ep('10.0.0.1')]);
    const tcp = sp({ key: 'ns/web', protocol: 'TCP' });
    expect(staleConntrackFilters(snap(same, st(tcp, [ep('10.0.0.5')])), snap(same, st(tcp, [])))).toEqual([]);
  });

  it('clears all endpoints of a deleted UDP service', () => {
    expect(staleConntrackFilters(snap(st(sp(), [ep('10.0.0.1')])), snap()).map((x) => x.dstNat)).toEqual(['10.0.0.1']);
  });
});
