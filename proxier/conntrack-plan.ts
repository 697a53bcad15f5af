/**
 * Which UDP conntrack entries are stale after a sync (pure). UDP has no
 * connection teardown, so an entry DNATed to a vanished endpoint keeps
 * black-holing the client's flow; and while a service had no endpoints, its
 * traffic was rejected, leaving entries that would not follow the new ones.
 * As upstream (event-based cleanup):
 * - an endpoint that was reachable and is no longer: delete entries DNATed
 *   to it, per service IP and for the node port;
 * - a service port that goes from no endpoints to some: delete entries for
 *   its IPs and node port.
 */
import type { ServicePortState, Snapshot } from './types.ts';

/** One `conntrack -D` call. */
export interface ConntrackFilter {
  readonly family: 'IPv4' | 'IPv6';
  readonly protocol: 'udp';
  /** --orig-dst */
  readonly origDst?: string;
  /** --dport (original destination port, for node ports) */
  readonly origDstPort?: number;
  /** --dst-nat (the endpoint the entry was DNATed to) */
  readonly dstNat?: string;
  /** For logs: which service port and why. */
  readonly reason: string;
}

/** Every address a service port is reached at: cluster IP, external IPs, load-balancer IPs. */
export function serviceIPs(s: ServicePortState): string[] {
  const sp = s.service;
  return [sp.clusterIP, ...sp.externalIPs, ...sp.loadBalancerVIPs];
}

export function staleConntrackFilters(prev: Snapshot | null, next: Snapshot): ConntrackFilter[] {
  const family = next.family;
  const before = new Map<string, ServicePortState>();
  for (const s of prev?.services ?? []) if (s.service.protocol === 'UDP') before.set(`${s.service.key}/UDP`, s);
  const filters: ConntrackFilter[] = [];
  const seen = new Set<string>();
  const add = (f: ConntrackFilter): void => {
    const k = `${f.origDst}|${f.origDstPort}|${f.dstNat}`;
    if (!seen.has(k)) {
      seen.add(k);
      filters.push(f);
    }
  };

  for (const s of next.services) {
    if (s.service.protocol !== 'UDP') continue;
    const old = before.get(`${s.service.key}/UDP`);
    before.delete(`${s.service.key}/UDP`);
    if (old === s) continue;
    const key = s.service.key;
    if ((!old || !old.selection.hasAny) && s.selection.hasAny) {
      const reason = `${key}: UDP service got its first endpoints`;
      for (const ip of serviceIPs(s)) add({ family, protocol: 'udp', origDst: ip, reason });
      if (s.service.nodePort) add({ family, protocol: 'udp', origDstPort: s.service.nodePort, reason });
      continue;
    }
    if (old) staleEndpoints(old, s, family, add);
  }
  // Service ports that disappeared: every endpoint they had is stale.
  for (const old of before.values()) {
    staleEndpoints(old, null, family, add);
  }
  return filters;
}

function staleEndpoints(old: ServicePortState, now: ServicePortState | null, family: 'IPv4' | 'IPv6', add: (f: ConntrackFilter) => void): void {
  const still = new Set(now?.selection.allReachable.map((e) => e.ip) ?? []);
  const sp = old.service;
  for (const ep of old.selection.allReachable) {
    if (still.has(ep.ip)) continue;
    const reason = `${sp.key}: UDP endpoint ${ep.ip} went away`;
    for (const ip of serviceIPs(old)) add({ family, protocol: 'udp', origDst: ip, dstNat: ep.ip, reason });
    if (sp.nodePort) add({ family, protocol: 'udp', origDstPort: sp.nodePort, dstNat: ep.ip, reason });
  }
}

/** argv for the conntrack tool. */
export function conntrackArgs(f: ConntrackFilter): string[] {
  const args = ['-D', '-p', 'udp'];
  if (f.family === 'IPv6') args.push('-f', 'ipv6');
  if (f.origDst) args.push('--orig-dst', f.origDst);
  if (f.origDstPort) args.push('--dport', String(f.origDstPort));
  if (f.dstNat) args.push('--dst-nat', f.dstNat);
  return args;
}
