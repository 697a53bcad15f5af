import { describe, expect, it } from 'vitest';
import { interfaceAddressesOf, interfacesFromIpJson } from './host-interfaces.ts';

// `ip -j addr show` on a node with a NIC without link (va: up, no carrier) and one set down (vc), as iproute2 6.1 prints it.
const IP_JSON = JSON.stringify([
  {
    ifindex: 1,
    ifname: 'lo',
    flags: ['LOOPBACK', 'UP', 'LOWER_UP'],
    operstate: 'UNKNOWN',
    addr_info: [
      { family: 'inet', local: '127.0.0.1', prefixlen: 8, scope: 'host', label: 'lo' },
      { family: 'inet6', local: '::1', prefixlen: 128, scope: 'host' },
    ],
  },
  {
    ifindex: 2,
    ifname: 'eth0',
    flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'],
    operstate: 'UP',
    addr_info: [
      { family: 'inet', local: '192.168.50.11', prefixlen: 24, scope: 'global', label: 'eth0' },
      { family: 'inet6', local: 'FD00::11', prefixlen: 64, scope: 'global' },
      { family: 'inet6', local: 'fe80::1%eth0', prefixlen: 64, scope: 'link' },
    ],
  },
  {
    ifindex: 3,
    ifname: 'va',
    link: 'vb',
    flags: ['NO-CARRIER', 'BROADCAST', 'MULTICAST', 'UP', 'M-DOWN'],
    operstate: 'LOWERLAYERDOWN',
    addr_info: [{ family: 'inet', local: '10.9.0.1', prefixlen: 24, scope: 'global', label: 'va' }],
  },
  { ifindex: 4, ifname: 'vc', flags: ['BROADCAST', 'MULTICAST', 'M-DOWN'], operstate: 'DOWN', addr_info: [{ family: 'inet', local: '10.8.0.1' }] },
  {
    ifindex: 5,
    ifname: 'tun0',
    flags: ['POINTOPOINT', 'NOARP', 'UP', 'LOWER_UP'],
    addr_info: [{ family: 'inet', local: '10.7.0.1', address: '10.7.0.2' }],
  },
  {},
]);

describe('interfacesFromIpJson (what upstream reads with net.Interfaces and net.InterfaceAddrs)', () => {
  it('lists every interface with its addresses whatever its state, canonical and without zone, and its flags', () => {
    expect(interfacesFromIpJson(IP_JSON)).toEqual([
      { name: 'lo', up: true, loopback: true, pointToPoint: false, addresses: ['127.0.0.1', '::1'] },
      { name: 'eth0', up: true, loopback: false, pointToPoint: false, addresses: ['192.168.50.11', 'fd00::11', 'fe80::1'] },
      { name: 'va', up: true, loopback: false, pointToPoint: false, addresses: ['10.9.0.1'] },
      { name: 'vc', up: false, loopback: false, pointToPoint: false, addresses: ['10.8.0.1'] },
      { name: 'tun0', up: true, loopback: false, pointToPoint: true, addresses: ['10.7.0.1'] },
      { name: '', up: false, loopback: false, pointToPoint: false, addresses: [] },
    ]);
  });

  it("gives GetNodeIPs' candidates: every address, an interface without carrier's and a down one's included", () => {
    expect(interfaceAddressesOf(interfacesFromIpJson(IP_JSON))).toEqual([
      '127.0.0.1',
      '::1',
      '192.168.50.11',
      'fd00::11',
      'fe80::1',
      '10.9.0.1',
      '10.8.0.1',
      '10.7.0.1',
    ]);
  });

  it('refuses what is not a JSON array (the caller keeps the last list)', () => {
    expect(() => interfacesFromIpJson('{"nope": 1}')).toThrow(/not a JSON array/);
    expect(() => interfacesFromIpJson('Error: something')).toThrow();
  });
});
