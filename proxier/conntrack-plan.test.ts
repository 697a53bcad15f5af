import { describe, expect, it } from 'vitest';
import { conntrackArgs, staleConntrackFilters } from './conntrack-plan.ts';
import type { ServicePort, ServicePortState } from './types.ts';
import { endpoint, portState, servicePort, snapshotOf } from '../test/domain.ts';

const sp = (over: Partial<ServicePort> = {}) =>
  servicePort({ key: 'ns/dns:dns', namespace: 'ns', name: 'dns', portName: 'dns', protocol: 'UDP', clusterIP: '172.30.0.10', port: 53, ...over });
const ep = (ip: string) => endpoint(ip, { port: 5353 });
const st = portState;
const snap = (...services: ServicePortState[]) => snapshotOf(services);

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
