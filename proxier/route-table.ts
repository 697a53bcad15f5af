/**
 * The node's main routing table as the packet tracers use it: which interface
 * a packet to an address leaves by (what `-o` / `oifname` test in FORWARD,
 * OUTPUT and POSTROUTING), and which interface a packet from an address
 * arrives on (the reverse path, what rp_filter assumes). Longest prefix wins,
 * as in the kernel's FIB; a local address leaves by `lo`. Policy routing (ip
 * rules, other tables) is not modelled.
 */
import { cidrContains, parseIP, parseIPOrCIDR, type ParsedCIDR } from './ip.ts';
import type { IPFamily } from './types.ts';

/** One route: a prefix (or an address, a host route) and its device (null for blackhole, unreachable, prohibit). */
export interface Route {
  readonly dst: string;
  readonly dev: string | null;
}

/** `ip -j -4|-6 route show` entries: dst ("default" is the family's /0), dev, type, the first nexthop's dev for multipath. */
export function routesFromIpJson(json: string, family: IPFamily): Route[] {
  const entries = JSON.parse(json) as { dst?: string; dev?: string; type?: string; nexthops?: { dev?: string }[] }[];
  return entries.flatMap((e) => {
    if (e.dst === undefined) return [];
    const dst = e.dst === 'default' ? (family === 'IPv4' ? '0.0.0.0/0' : '::/0') : e.dst;
    return [{ dst, dev: e.type !== undefined && e.type !== 'unicast' ? null : (e.dev ?? e.nexthops?.[0]?.dev ?? null) }];
  });
}

/** What a lookup found: the device, null for a route without one, undefined when no route covers the address. */
export type RouteLookup = (ip: string) => string | null | undefined;

/** The lookup over `routes`; local addresses (as isLocal says) leave by lo. */
export function routeLookup(routes: readonly Route[], isLocal: (ip: string) => boolean): RouteLookup {
  const table: { cidr: ParsedCIDR; dev: string | null }[] = [];
  for (const r of routes) {
    const cidr = parseIPOrCIDR(r.dst);
    if (cidr) table.push({ cidr, dev: r.dev });
  }
  table.sort((a, b) => b.cidr.prefix - a.cidr.prefix);
  return (ip) => {
    if (isLocal(ip)) return 'lo';
    const a = parseIP(ip);
    if (!a) return undefined;
    const hit = table.find((r) => cidrContains(r.cidr, a));
    return hit === undefined ? undefined : hit.dev;
  };
}
