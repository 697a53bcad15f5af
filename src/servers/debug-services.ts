/**
 * /debug/services: per IP family, every service port of the last successful
 * sync with what the mode made for it (iptables: its KUBE-SVC/SVL/EXT/FW
 * chains; nftables: its service-/external-/... chains and map keys;
 * userspace: its listeners) and each endpoint with its state, whether this
 * node sends to it (and if not, why), its own objects (a KUBE-SEP or
 * endpoint- chain; in nftables generation B without endpoint chains its entry
 * in the service's DNAT map, and a local one's hairpin-connections element)
 * and, with --traffic-counters (iptables, nftables), the packets
 * and bytes it received. Pure:
 * snapshots and the mode's inspection in, a table (text or JSON) out.
 */
import type { ModeInspection } from '../../proxier/mode.ts';
import type { EndpointTraffic } from '../../proxier/traffic-totals.ts';
import { endpointString, type Endpoint, type IPFamily, type ServicePortState, type Snapshot } from '../../proxier/types.ts';

export interface EndpointRow {
  readonly endpoint: string;
  /** ready, serving-terminating, terminating, not-ready. */
  readonly state: string;
  readonly node: string | null;
  readonly local: boolean;
  /** Whether this node sends traffic to it (upstream's allReachableEndpoints). */
  readonly used: boolean;
  readonly object: string | null;
  readonly packets: number | null;
  readonly bytes: number | null;
}

export interface ServiceRow {
  readonly service: string;
  readonly protocol: string;
  readonly clusterIP: string;
  readonly port: number;
  readonly nodePort: number;
  readonly externalIPs: readonly string[];
  readonly loadBalancerIPs: readonly string[];
  /** Why the service has no endpoint this node can use, or null. */
  readonly note: string | null;
  readonly objects: readonly string[];
  readonly endpoints: readonly EndpointRow[];
}

export interface FamilyServices {
  readonly family: IPFamily;
  /** False before the family's first successful sync. */
  readonly synced: boolean;
  readonly services: readonly ServiceRow[];
}

export function endpointState(ep: Endpoint): string {
  if (ep.ready) return 'ready';
  if (ep.terminating) return ep.serving ? 'serving-terminating' : 'terminating';
  return 'not-ready';
}

function serviceRow(family: IPFamily, s: ServicePortState, inspect: ModeInspection | undefined, traffic: Map<string, EndpointTraffic>): ServiceRow {
  const sp = s.service;
  const objects = inspect?.objectsOf(family, s) ?? null;
  const reachable = new Set(s.selection.allReachable.map(endpointString));
  const endpoints = s.endpoints.map((ep): EndpointRow => {
    const addr = endpointString(ep);
    const t = traffic.get(`${sp.key}\u0000${addr}`);
    return {
      endpoint: addr,
      state: endpointState(ep),
      node: ep.nodeName,
      local: ep.isLocal,
      used: reachable.has(addr),
      object: objects?.endpoints.get(addr) ?? null,
      packets: t?.packets ?? null,
      bytes: t?.bytes ?? null,
    };
  });
  const note = !s.selection.hasAny
    ? 'no usable endpoint: rejected'
    : reachable.size === 0
      ? 'no local endpoint: dropped (traffic policy Local)'
      : (s.selection.topologyReason ?? null);
  return {
    service: sp.key,
    protocol: sp.protocol,
    clusterIP: sp.clusterIP,
    port: sp.port,
    nodePort: sp.nodePort,
    externalIPs: sp.externalIPs,
    loadBalancerIPs: sp.loadBalancerVIPs,
    note,
    objects: objects?.service ?? [],
    endpoints,
  };
}

/** The table of every family the mode programs, from each family's last synced snapshot. */
export function servicesTable(
  families: readonly IPFamily[],
  lastSynced: (family: IPFamily) => Snapshot | null,
  inspect: ModeInspection | undefined,
): FamilyServices[] {
  const traffic = new Map((inspect?.traffic() ?? []).map((t) => [`${t.service}\u0000${t.endpoint}`, t]));
  return families.map((family) => {
    const snap = lastSynced(family);
    return { family, synced: snap !== null, services: (snap?.services ?? []).map((s) => serviceRow(family, s, inspect, traffic)) };
  });
}

const addr = (ip: string, port: number): string => (ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`);

/** Plain text: a block per service port, endpoints indented under it, columns aligned within the block. */
export function formatServicesTable(table: readonly FamilyServices[], counting: boolean): string {
  const out: string[] = [];
  for (const f of table) {
    out.push(`# ${f.family}: ${f.synced ? `${f.services.length} service port(s) as of the last successful sync` : 'not synced yet'}`);
    for (const s of f.services) {
      const where = [addr(s.clusterIP, s.port)];
      if (s.nodePort) where.push(`nodePort ${s.nodePort}`);
      for (const ip of s.externalIPs) where.push(`externalIP ${ip}`);
      for (const ip of s.loadBalancerIPs) where.push(`loadBalancer ${ip}`);
      out.push(`${s.service} ${s.protocol} ${where.join(' ')}`);
      out.push(`  ${s.objects.length ? s.objects.join(' ') : '(nothing programmed)'}`);
      if (s.note) out.push(`  ${s.note}`);
      const rows = s.endpoints.map((e) => [
        e.endpoint,
        e.state,
        e.node ? `${e.node}${e.local ? ' (local)' : ''}` : e.local ? '(local)' : '-',
        e.used ? (e.object ?? 'used') : 'not used',
        ...(counting ? [e.packets === null ? '-' : `${e.packets} pkts`, e.bytes === null ? '-' : `${e.bytes} bytes`] : []),
      ]);
      if (!rows.length) out.push('  (no endpoints)');
      const widths = rows.reduce<number[]>((w, r) => r.map((c, i) => Math.max(w[i] ?? 0, c.length)), []);
      for (const r of rows) out.push(`  ${r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')}`);
    }
  }
  return out.join('\n') + '\n';
}
