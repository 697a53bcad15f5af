/**
 * Userspace mode's host IP when the node IP of its family is on no interface
 * (the DNAT target of the node's own portal and NodePort traffic): upstream's
 * utilnet.ChooseHostInterface (k8s.io/apimachinery/pkg/util/net/interface.go),
 * pure over what src/system/interfaces.ts reads. From the default routes in
 * /proc/net/route and /proc/net/ipv6_route, in the files' order: the first
 * global unicast address of the route's interface when that is up, else one on
 * an up loopback interface (chooseHostInterfaceFromRoute); without a readable
 * routing table, the first global unicast address of an up interface that is
 * neither loopback nor point-to-point (chooseIPFromHostInterfaces). Unlike
 * upstream, only the mode's family is looked at (upstream prefers IPv4, which
 * an IPv6 userspace proxy cannot DNAT to), and a table without a usable
 * default route falls back to the interfaces instead of failing the start.
 */
import type { HostInterface } from '../proxier/host-interfaces.ts';
import { isLoopback, isUnspecified, parseIP, type ParsedIP } from '../proxier/ip.ts';
import type { IPFamily } from '../proxier/types.ts';

export interface DefaultRoute {
  readonly family: IPFamily;
  /** The interface the route leaves by. */
  readonly iface: string;
}

const ZERO_V4 = '00000000';
const ZERO_V6 = '0'.repeat(32);

/**
 * The default routes in /proc/net/route (IPv4: destination 0.0.0.0) and /proc/net/ipv6_route (IPv6: destination ::
 * with a gateway), as upstream's getIPv4DefaultRoutes and getIPv6DefaultRoutes read them; null when the IPv4 file
 * could not be read (upstream then looks at the interfaces alone). An unreadable IPv6 file adds no route.
 */
export function defaultRoutesFromProc(ipv4: string | null, ipv6: string | null): DefaultRoute[] | null {
  if (ipv4 === null) return null;
  const routes: DefaultRoute[] = [];
  for (const line of ipv4.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[0] === 'Iface' || f.length < 3) continue;
    if (f[1] === ZERO_V4) routes.push({ family: 'IPv4', iface: f[0]! });
  }
  for (const line of (ipv6 ?? '').split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    if (f[0] === ZERO_V6 && f[4] !== ZERO_V6) routes.push({ family: 'IPv6', iface: f[9]! });
  }
  return routes;
}

/** Go's IP.IsGlobalUnicast: not unspecified, loopback, multicast, link-local or the IPv4 broadcast address. */
export function isGlobalUnicast(ip: ParsedIP): boolean {
  const b = ip.bytes;
  if (isUnspecified(ip) || isLoopback(ip)) return false;
  if (ip.family === 'IPv4') return !((b[0]! & 0xf0) === 0xe0 || b.every((x) => x === 255) || (b[0] === 169 && b[1] === 254));
  return !(b[0] === 0xff || (b[0] === 0xfe && (b[1]! & 0xc0) === 0x80));
}

function globalAddress(i: HostInterface | undefined, family: IPFamily): string | null {
  if (!i?.up) return null;
  for (const text of i.addresses) {
    const ip = parseIP(text);
    if (ip && ip.family === family && isGlobalUnicast(ip)) return ip.text;
  }
  return null;
}

/** ChooseHostInterface for one family; null when no interface has a global unicast address of it. */
export function chooseHostIP(interfaces: readonly HostInterface[], routes: readonly DefaultRoute[] | null, family: IPFamily): string | null {
  const fromInterfaces = (): string | null => {
    for (const i of interfaces) {
      if (i.loopback || i.pointToPoint) continue;
      const ip = globalAddress(i, family);
      if (ip !== null) return ip;
    }
    return null;
  };
  if (routes === null) return fromInterfaces();
  for (const r of routes) {
    if (r.family !== family) continue;
    const ip = globalAddress(
      interfaces.find((i) => i.name === r.iface),
      family,
    );
    if (ip !== null) return ip;
    // Default routes over interfaces with link-local addresses only (RFC 5549): the global address is on loopback.
    for (const lo of interfaces.filter((i) => i.loopback)) {
      const onLo = globalAddress(lo, family);
      if (onLo !== null) return onLo;
    }
  }
  return fromInterfaces();
}
