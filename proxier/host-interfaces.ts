/**
 * This host's interfaces and their addresses as the kernel lists them
 * (`ip -j addr show`: the RTM_GETLINK and RTM_GETADDR dumps Go's
 * net.Interfaces and net.InterfaceAddrs read), parsed here so that the
 * choices made from them stay pure: the NodePort addresses
 * (node-ports.ts) and userspace mode's host IP (userspace/host-ip.ts).
 * Every address is listed, whatever the link's state: an address on an
 * interface that is down or has no carrier is still local to Linux (weak
 * host: the local route stays, and the node answers for it on any interface).
 */
import { parseIP } from './ip.ts';

export interface HostInterface {
  readonly name: string;
  /** Administratively up (IFF_UP, Go's FlagUp), with or without carrier. */
  readonly up: boolean;
  readonly loopback: boolean;
  readonly pointToPoint: boolean;
  /** Its addresses in the kernel's order, canonical, IPv6 zone dropped. */
  readonly addresses: readonly string[];
}

interface IpLink {
  readonly ifname?: string;
  readonly flags?: readonly string[];
  readonly addr_info?: readonly { readonly local?: string }[];
}

/** `ip -j addr show` output -> the interfaces, in ifindex order (iproute2 prints `{}` for some: no name, no addresses). */
export function interfacesFromIpJson(json: string): HostInterface[] {
  const links = JSON.parse(json) as unknown;
  if (!Array.isArray(links)) throw new Error('ip -j addr show: not a JSON array');
  return (links as (IpLink | null)[]).flatMap((l) => {
    if (typeof l !== 'object' || l === null) return [];
    const flags = Array.isArray(l.flags) ? l.flags : [];
    const addresses = (Array.isArray(l.addr_info) ? l.addr_info : []).flatMap((a) => {
      const ip = typeof a?.local === 'string' ? parseIP(a.local.replace(/%.*$/, '')) : null;
      return ip ? [ip.text] : [];
    });
    return [
      {
        name: typeof l.ifname === 'string' ? l.ifname : '',
        up: flags.includes('UP'),
        loopback: flags.includes('LOOPBACK'),
        pointToPoint: flags.includes('POINTOPOINT'),
        addresses,
      },
    ];
  });
}

/** Every address of every interface (upstream GetNodeIPs' net.InterfaceAddrs). */
export function interfaceAddressesOf(interfaces: readonly HostInterface[]): string[] {
  return interfaces.flatMap((i) => i.addresses);
}
