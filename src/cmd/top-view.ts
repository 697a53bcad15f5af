/**
 * What `kube-proxy-ts top` shows, pure: two readings of the KUBE-SEP
 * counters (iptables/endpoint-counters.ts) or of the nftables mode's named
 * counters (nftables/counters.ts) -> per service port, its endpoints
 * with packets per second, the share of the service's packets each one got,
 * and the total its rule has counted; then the frame as text. A counter lower
 * than in the previous reading restarted (a sync rewrote its chain), and a
 * chain the previous reading did not have is new: either way its whole value
 * is the growth.
 */
import type { EndpointCounter } from '../../iptables/endpoint-counters.ts';

export interface EndpointRate {
  readonly endpoint: string;
  readonly chain: string;
  readonly packetsPerSecond: number;
  readonly bytesPerSecond: number;
  /** Share of the service port's packets in the interval, 0..1 (0 when the service got none). */
  readonly share: number;
  /** What the rule has counted since its chain was last written. */
  readonly packets: number;
}

export interface ServiceRate {
  readonly service: string;
  readonly packetsPerSecond: number;
  readonly bytesPerSecond: number;
  readonly endpoints: readonly EndpointRate[];
}

/** Rates between two readings `seconds` apart, services busiest first (then by name), endpoints by address. */
export function rates(previous: readonly EndpointCounter[], current: readonly EndpointCounter[], seconds: number): ServiceRate[] {
  const before = new Map(previous.map((c) => [c.chain, c]));
  const byService = new Map<string, { endpoint: string; chain: string; packets: number; bytes: number; total: number }[]>();
  for (const c of current) {
    const p = before.get(c.chain);
    const restarted = !p || c.packets < p.packets || c.bytes < p.bytes;
    const row = {
      endpoint: c.endpoint,
      chain: c.chain,
      packets: restarted ? c.packets : c.packets - p.packets,
      bytes: restarted ? c.bytes : c.bytes - p.bytes,
      total: c.packets,
    };
    const service = c.service || '(unnamed)';
    const rows = byService.get(service);
    if (rows) rows.push(row);
    else byService.set(service, [row]);
  }
  const per = (n: number): number => (seconds > 0 ? n / seconds : 0);
  const out: ServiceRate[] = [];
  for (const [service, rows] of byService) {
    const packets = rows.reduce((n, r) => n + r.packets, 0);
    const bytes = rows.reduce((n, r) => n + r.bytes, 0);
    out.push({
      service,
      packetsPerSecond: per(packets),
      bytesPerSecond: per(bytes),
      endpoints: rows
        .sort((a, b) => (a.endpoint < b.endpoint ? -1 : a.endpoint > b.endpoint ? 1 : 0))
        .map((r) => ({
          endpoint: r.endpoint,
          chain: r.chain,
          packetsPerSecond: per(r.packets),
          bytesPerSecond: per(r.bytes),
          share: packets > 0 ? r.packets / packets : 0,
          packets: r.total,
        })),
    });
  }
  return out.sort((a, b) => b.packetsPerSecond - a.packetsPerSecond || (a.service < b.service ? -1 : a.service > b.service ? 1 : 0));
}

export interface FrameOptions {
  /** Header: what was read, e.g. "IPv4 nat, nft" (family, table, backend). */
  readonly source: string;
  readonly intervalSeconds: number;
  /** Wall-clock time of the reading. */
  readonly at: Date;
  /** Terminal width (the share bar uses what is left). */
  readonly columns: number;
  /** Most lines (terminal height); further services are summed up in one line. */
  readonly rows: number;
  /** Lines shown under the header (what the reading could not read). */
  readonly notes?: readonly string[];
  /** What counts: the rules (default "the KUBE-SEP DNAT rules") and the line shown when there is nothing to count. */
  readonly counted?: { readonly by: string; readonly none: string };
}

export const IPTABLES_COUNTED = {
  by: 'the KUBE-SEP DNAT rules',
  none: '(no KUBE-SEP chains: no service endpoints programmed in iptables mode on this node)',
} as const;

const fmtRate = (n: number): string => (n >= 100 ? n.toFixed(0) : n.toFixed(1));
const fmtBytes = (n: number): string =>
  n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)}M` : n >= 1024 ? `${(n / 1024).toFixed(1)}K` : n.toFixed(0);

/** One screen: a header, then per service port a line and its endpoints with a share bar. */
export function formatFrame(services: readonly ServiceRate[], o: FrameOptions): string[] {
  const endpoints = services.reduce((n, s) => n + s.endpoints.length, 0);
  const lines = [
    `kube-proxy-ts top ${o.at.toISOString().slice(11, 19)}Z | ${o.source} | every ${o.intervalSeconds}s | ${services.length} services, ${endpoints} endpoints`,
    `pkts: new TCP connections and UDP flows, as ${(o.counted ?? IPTABLES_COUNTED).by} count them`,
    ...(o.notes ?? []),
    '',
  ];
  const nameWidth = Math.max(24, ...services.flatMap((s) => [s.service.length, ...s.endpoints.map((e) => e.endpoint.length + 2)]));
  const head = `${'SERVICE / ENDPOINT'.padEnd(nameWidth)}  ${'PKTS/S'.padStart(8)}  ${'BYTES/S'.padStart(8)}  ${'SHARE'.padStart(5)}  ${'TOTAL'.padStart(9)}`;
  const barWidth = Math.max(0, Math.min(30, o.columns - head.length - 3));
  lines.push(barWidth > 0 ? `${head}  SHARE OF THE SERVICE` : head);
  if (!services.length) lines.push((o.counted ?? IPTABLES_COUNTED).none);
  let shown = 0;
  for (const s of services) {
    if (lines.length + 1 + s.endpoints.length > o.rows - 1 && shown > 0) {
      lines.push(`... ${services.length - shown} more service port(s) not shown (a taller terminal shows them)`);
      break;
    }
    shown++;
    lines.push(
      `${s.service.padEnd(nameWidth)}  ${fmtRate(s.packetsPerSecond).padStart(8)}  ${fmtBytes(s.bytesPerSecond).padStart(8)}  ${''.padStart(5)}  ${''.padStart(9)}`.trimEnd(),
    );
    for (const e of s.endpoints) {
      const bar = barWidth > 0 ? `  ${'#'.repeat(Math.round(e.share * barWidth)).padEnd(barWidth, '.')}` : '';
      const share = s.packetsPerSecond > 0 ? `${Math.round(e.share * 100)}%` : '-';
      lines.push(
        `${`  ${e.endpoint}`.padEnd(nameWidth)}  ${fmtRate(e.packetsPerSecond).padStart(8)}  ${fmtBytes(e.bytesPerSecond).padStart(8)}  ${share.padStart(5)}  ${String(e.packets).padStart(9)}${bar}`,
      );
    }
  }
  return lines.map((l) => (l.length > o.columns ? l.slice(0, o.columns) : l));
}
