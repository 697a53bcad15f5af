import { describe, expect, it } from 'vitest';
import type { HostInterface } from '../proxier/host-interfaces.ts';
import { parseIP } from '../proxier/ip.ts';
import { chooseHostIP, defaultRoutesFromProc, isGlobalUnicast } from './host-ip.ts';

// As the kernel prints them: eth0 holds a link route only, eth1 the default route (upstream's fixtures have this shape).
const ROUTE = [
  'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT',
  'eth0\t0032A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0',
  'eth1\t00000000\t023CA8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0',
  'eth1\t003CA8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0',
].join('\n');
const IPV6_ROUTE = [
  'fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0',
  '00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000001 00000000 00000003     eth0',
  '00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001       lo',
  '00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo',
].join('\n');

const iface = (name: string, addresses: string[], over: Partial<HostInterface> = {}): HostInterface => ({
  name,
  up: true,
  loopback: false,
  pointToPoint: false,
  addresses,
  ...over,
});
const lo = iface('lo', ['127.0.0.1', '::1'], { loopback: true });

describe('defaultRoutesFromProc (upstream getIPv4DefaultRoutes, getIPv6DefaultRoutes)', () => {
  it("lists the default routes in the files' order: IPv4 destination 0.0.0.0, IPv6 destination :: with a gateway", () => {
    expect(defaultRoutesFromProc(ROUTE, IPV6_ROUTE)).toEqual([
      { family: 'IPv4', iface: 'eth1' },
      { family: 'IPv6', iface: 'eth0' },
    ]);
  });

  it('is null without the IPv4 file (upstream then looks at the interfaces alone); no IPv6 file adds nothing', () => {
    expect(defaultRoutesFromProc(null, IPV6_ROUTE)).toBe(null);
    expect(defaultRoutesFromProc(ROUTE, null)).toEqual([{ family: 'IPv4', iface: 'eth1' }]);
  });
});

describe('chooseHostIP (upstream ChooseHostInterface, for one family)', () => {
  const eth0 = iface('eth0', ['192.168.50.11', 'fd00::11', 'fe80::1']);
  const eth1 = iface('eth1', ['192.168.60.1', 'fe80::2']);
  const routes = defaultRoutesFromProc(ROUTE, IPV6_ROUTE);

  it("takes the default route's interface, not the first one (chooseHostInterfaceFromRoute)", () => {
    expect(chooseHostIP([lo, eth0, eth1], routes, 'IPv4')).toBe('192.168.60.1');
    expect(chooseHostIP([lo, eth0, eth1], routes, 'IPv6')).toBe('fd00::11');
  });

  it('skips an interface that is down and non-global addresses, then takes a global address on loopback (RFC 5549 nodes)', () => {
    expect(chooseHostIP([lo, eth0, { ...eth1, up: false }], routes, 'IPv4')).toBe('192.168.50.11');
    const unnumbered = iface('eth1', ['169.254.0.1', 'fe80::2']);
    const loWithVip = iface('lo', ['127.0.0.1', '10.0.0.7', '::1'], { loopback: true });
    expect(chooseHostIP([loWithVip, eth0, unnumbered], routes, 'IPv4')).toBe('10.0.0.7');
  });

  it('without a routing table, or without a default route that has one, the first up interface with a global address that is neither loopback nor point-to-point', () => {
    const tun = iface('tun0', ['10.8.0.1'], { pointToPoint: true });
    const down = iface('eth2', ['192.168.70.1'], { up: false });
    expect(chooseHostIP([lo, tun, down, eth0, eth1], null, 'IPv4')).toBe('192.168.50.11');
    expect(chooseHostIP([lo, tun, down, eth0, eth1], [], 'IPv4')).toBe('192.168.50.11');
    expect(chooseHostIP([lo, iface('eth0', ['fe80::1'])], routes, 'IPv6')).toBe(null);
  });
});

describe('isGlobalUnicast (Go IP.IsGlobalUnicast)', () => {
  it('is false for unspecified, loopback, multicast, link-local and broadcast; true for private and reserved unicast', () => {
    const g = (ip: string) => isGlobalUnicast(parseIP(ip)!);
    expect(['0.0.0.0', '127.0.0.5', '224.0.0.1', '169.254.1.1', '255.255.255.255', '::', '::1', 'ff02::1', 'fe80::1'].map(g)).toEqual(
      Array(9).fill(false),
    );
    expect(['10.0.0.1', '192.168.0.1', '240.0.0.1', 'fd00::1', '2001:db8::1'].map(g)).toEqual(Array(5).fill(true));
  });
});
