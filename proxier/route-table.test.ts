import { describe, expect, it } from 'vitest';
import { routeLookup, routesFromIpJson } from './route-table.ts';

// What `ip -j -4 route show` prints on a node with Docker, a Calico IPAM block and a multipath route.
const IP_JSON_V4 = JSON.stringify([
  { dst: 'default', gateway: '192.168.50.1', dev: 'eth0', flags: [] },
  { dst: '172.17.0.0/16', dev: 'docker0', protocol: 'kernel', scope: 'link', prefsrc: '172.17.0.1', flags: ['linkdown'] },
  { type: 'blackhole', dst: '10.244.1.0/26', protocol: 'bird', flags: [] },
  { dst: '10.244.1.2', dev: 'cali12345', scope: 'link', flags: [] },
  { dst: '10.244.2.0/24', flags: [], nexthops: [{ gateway: '192.168.50.12', dev: 'eth1', weight: 1, flags: [] }] },
]);

describe('the node’s routes for the tracers', () => {
  const isLocal = (ip: string) => ip === '192.168.50.11' || ip.startsWith('127.');

  it('reads `ip -j route show`: default is the family’s /0, blackhole routes have no device, multipath takes the first nexthop', () => {
    expect(routesFromIpJson(IP_JSON_V4, 'IPv4')).toEqual([
      { dst: '0.0.0.0/0', dev: 'eth0' },
      { dst: '172.17.0.0/16', dev: 'docker0' },
      { dst: '10.244.1.0/26', dev: null },
      { dst: '10.244.1.2', dev: 'cali12345' },
      { dst: '10.244.2.0/24', dev: 'eth1' },
    ]);
    expect(routesFromIpJson(JSON.stringify([{ dst: 'default', dev: 'eth0' }]), 'IPv6')).toEqual([{ dst: '::/0', dev: 'eth0' }]);
  });

  it('longest prefix wins; a local address leaves by lo; no route is undefined, a route without a device null', () => {
    const route = routeLookup(routesFromIpJson(IP_JSON_V4, 'IPv4'), isLocal);
    expect(route('10.244.1.2')).toBe('cali12345');
    expect(route('10.244.1.3')).toBeNull();
    expect(route('10.244.2.9')).toBe('eth1');
    expect(route('172.17.0.2')).toBe('docker0');
    expect(route('8.8.8.8')).toBe('eth0');
    expect(route('192.168.50.11')).toBe('lo');
    expect(route('127.0.0.1')).toBe('lo');
    expect(route('fd00::1')).toBeUndefined();
  });
});
