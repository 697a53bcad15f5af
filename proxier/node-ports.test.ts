import { describe, expect, it } from 'vitest';
import { nodeInfo } from '../test/domain.ts';
import { hostAddressesOf, selectNodePortAddresses } from './node-ports.ts';

/** lo and eth0 of a host, as net.InterfaceAddrs lists them. */
const local = ['127.0.0.1', '::1', '192.168.0.2', '10.1.0.2', 'fd00::2'];
const v4 = (cidrs: string[], primaryIP: string | null = '192.168.0.2') =>
  selectNodePortAddresses({ cidrs, family: 'IPv4', localAddresses: local, primaryIP });
const v6 = (cidrs: string[], primaryIP: string | null = 'fd00::2') =>
  selectNodePortAddresses({ cidrs, family: 'IPv6', localAddresses: local, primaryIP });

describe('selectNodePortAddresses', () => {
  it('matches everything when the flag is unset, 127.0.0.1 included for IPv4', () => {
    expect(v4([])).toMatchObject({ matchAll: true, containsIPv4Loopback: true });
    expect(v6([])).toMatchObject({ matchAll: true, containsIPv4Loopback: false });
  });

  it('selects the local addresses inside the CIDRs of the family', () => {
    expect(v4(['192.168.0.0/16', 'fd00::/64'])).toMatchObject({ matchAll: false, ips: ['192.168.0.2'], containsIPv4Loopback: false });
    expect(v6(['192.168.0.0/16', 'fd00::/64'])).toMatchObject({ matchAll: false, ips: ['fd00::2'] });
    expect(v4(['127.0.0.0/8'])).toMatchObject({ matchAll: false, ips: ['127.0.0.1'], containsIPv4Loopback: true });
  });

  it('matches every address of a family that has no CIDR listed, 127.0.0.1 NodePorts included (upstream NewNodePortAddresses)', () => {
    const onlyV6 = v4(['fd00::/64']);
    expect(onlyV6).toMatchObject({ matchAll: true, containsIPv4Loopback: true });
    const onlyV4 = v6(['192.168.0.0/16']);
    expect(onlyV4).toMatchObject({ matchAll: true });
  });

  it('"primary" is the node IP of each family; a family without one matches everything (upstream server.go NodePortAddressesPrimary)', () => {
    expect(v4(['primary'])).toMatchObject({ matchAll: false, ips: ['192.168.0.2'], containsIPv4Loopback: false });
    expect(v6(['primary'], null)).toMatchObject({ matchAll: true });
  });

  it("expands v1.37's keywords per family, as server.go does: 'localhost' is 127.0.0.0/8 and ::1/128, 'all' 0.0.0.0/0 and ::/0, 'primary' the node IP; combined, their union", () => {
    expect(v4(['localhost'])).toMatchObject({ matchAll: false, ips: ['127.0.0.1'], containsIPv4Loopback: true });
    expect(v6(['localhost'])).toMatchObject({ matchAll: false, ips: ['::1'], containsIPv4Loopback: false });
    expect(v4(['all'])).toMatchObject({ matchAll: true, containsIPv4Loopback: true });
    expect(v6(['all', 'localhost'])).toMatchObject({ matchAll: true });
    expect(v4(['primary', 'localhost'])).toMatchObject({ matchAll: false, ips: ['127.0.0.1', '192.168.0.2'], containsIPv4Loopback: true });
    expect(v6(['primary', 'localhost'])).toMatchObject({ matchAll: false, ips: ['::1', 'fd00::2'] });
    // An IPv4-only node: "primary" gives the IPv6 family nothing, "localhost" ::1 only (not every address).
    expect(v6(['primary', 'localhost'], null)).toMatchObject({ matchAll: false, ips: ['::1'] });
    expect(v4(['primary', '10.0.0.0/8'])).toMatchObject({ matchAll: false, ips: ['192.168.0.2', '10.1.0.2'] });
  });

  it('selects among the given addresses only, each once (upstream GetNodeIPs over net.InterfaceAddrs)', () => {
    // A node IP no interface has: "primary" (its /32) selects nothing, as upstream's GetNodeIPs finds no interface address in it.
    expect(v4(['primary'], '203.0.113.7')).toMatchObject({ matchAll: false, ips: [] });
    const twice = selectNodePortAddresses({
      cidrs: ['10.0.0.0/8'],
      family: 'IPv4',
      localAddresses: ['10.1.0.2', '10.1.0.3', '10.1.0.2'],
      primaryIP: null,
    });
    expect(twice.ips).toEqual(['10.1.0.2', '10.1.0.3']);
  });
});

describe('hostAddressesOf', () => {
  const node = nodeInfo({ addresses: ['192.168.0.2', '203.0.113.7'] });
  it("is the sync's interface addresses when read, else the Node object's addresses and loopback (render, trace --objects)", () => {
    expect(hostAddressesOf({ node, hostAddresses: ['127.0.0.1', '192.168.0.2', '192.168.0.7'] })).toEqual([
      '127.0.0.1',
      '192.168.0.2',
      '192.168.0.7',
    ]);
    expect(hostAddressesOf({ node })).toEqual(['192.168.0.2', '203.0.113.7', '127.0.0.1', '::1']);
  });
});
