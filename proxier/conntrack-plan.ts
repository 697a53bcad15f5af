/**
 * Which UDP conntrack entries are stale after a sync (pure), as upstream's
 * conntrack reconciler (pkg/proxy/conntrack/cleanup.go CleanStaleEntries,
 * v1.32+, with #139629): UDP has no teardown, so an entry DNATed to an
 * endpoint that no longer serves keeps black-holing the client's flow, and an
 * entry made while the service had no endpoints (rejected) keeps the flow
 * from the endpoints it has now.
 * - After a sync in which some UDP service port changed (and after the first
 *   one), the family's UDP entries are listed (`conntrack -L`).
 * - An entry whose original destination is a UDP service port's cluster IP,
 *   external IP or load-balancer IP and port, or whose original destination
 *   port is its node port, is stale when its reply source (address and port)
 *   is not one of the port's serving endpoints (traffic policies, topology and
 *   terminating state are deliberately ignored, as upstream); the port counts
 *   (#130542): after a target port change the flows still DNATed to an
 *   endpoint's old port are stale although its IP still serves. A port with no
 *   serving endpoint makes all of its entries stale (#139629).
 * - Stale entries are deleted per original destination and reply source (address and port).
 * Unlike the event-based cleanup before it, a restart deletes only what is
 * stale, not every UDP flow (upstream #122740).
 */
import { normalizeIP } from './ip.ts';
import { endpointString, type IPFamily, type ServicePortState, type Snapshot } from './types.ts';

/** One `conntrack -D` call. */
export interface ConntrackFilter {
  readonly family: 'IPv4' | 'IPv6';
  readonly protocol: 'udp';
  /** --orig-dst */
  readonly origDst?: string;
  /** --dport (original destination port) */
  readonly origDstPort?: number;
  /** --reply-src (who answers: the endpoint, or the service IP itself when nothing DNATed the entry) */
  readonly replySrc?: string;
  /** --reply-port-src (the port that answers: the endpoint's, or the service port when nothing DNATed the entry) */
  readonly replySrcPort?: number;
  /** For logs: which service port and why. */
  readonly reason: string;
}

/** The tuples of one UDP entry of `conntrack -L` that the reconciler reads. */
export interface ConntrackEntry {
  readonly origSrc: string;
  readonly origDst: string;
  readonly origSrcPort: number;
  readonly origDstPort: number;
  readonly replySrc: string;
  readonly replySrcPort: number;
}

/**
 * The UDP entries of `conntrack -L -p udp` output (one per line: the original
 * tuple's src, dst, sport, dport, then the reply tuple's; each tuple is
 * followed by its packets and bytes when net.netfilter.nf_conntrack_acct=1,
 * which anything on the node may have turned on); other lines (the tool's
 * summary) are skipped.
 */
export function parseConntrackList(text: string): ConntrackEntry[] {
  const out: ConntrackEntry[] = [];
  ENTRY.lastIndex = 0;
  for (let m = ENTRY.exec(text); m !== null; m = ENTRY.exec(text)) {
    const [origSrc, origDst, replySrc] = [address(m[1]!), address(m[2]!), address(m[5]!)];
    if (origSrc === null || origDst === null || replySrc === null) continue;
    out.push({ origSrc, origDst, origSrcPort: Number(m[3]), origDstPort: Number(m[4]), replySrc, replySrcPort: Number(m[6]) });
  }
  return out;
}

// A UDP line: the original tuple's src, dst, sport, dport, then (after its counters, [UNREPLIED], both or nothing) the
// reply tuple's src and sport.
const ENTRY =
  /^udp\s+\d+\s+\d+\s+src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+) (?:packets=\d+ bytes=\d+ )?(?:\[\w+\] )?src=(\S+) dst=\S+ sport=(\d+) /gm;

/** IPv4 as conntrack prints it is already canonical; IPv6 is compared in our canonical form. */
const address = (text: string): string | null => (text.includes(':') ? normalizeIP(text) : text);

/** Every address a service port is reached at: cluster IP, external IPs, load-balancer IPs. */
export function serviceIPs(s: ServicePortState): string[] {
  const sp = s.service;
  return [sp.clusterIP, ...sp.externalIPs, ...sp.loadBalancerVIPs];
}

/** Whether a sync from `prev` to `next` calls for a reconcile: its first, or one in which a UDP service port changed. */
export function conntrackReconcileNeeded(prev: Snapshot | null, next: Snapshot): boolean {
  if (prev === null) return next.services.some((s) => s.service.protocol === 'UDP');
  const before = new Map<string, ServicePortState>();
  for (const s of prev.services) if (s.service.protocol === 'UDP') before.set(s.service.key, s);
  for (const s of next.services) {
    if (s.service.protocol !== 'UDP') continue;
    if (before.get(s.service.key) !== s) return true;
    before.delete(s.service.key);
  }
  return before.size > 0;
}

/** The deletions for the stale entries among `entries` (one family's), grouped per original destination and reply source. */
export function staleConntrackFilters(entries: readonly ConntrackEntry[], snapshot: Snapshot): ConntrackFilter[] {
  const family: IPFamily = snapshot.family;
  // "ip port" and node port -> the serving endpoints ("ip port"), and which service port it is (for the log).
  const byAddress = new Map<string, { serving: Set<string>; key: string }>();
  const byNodePort = new Map<number, { serving: Set<string>; key: string }>();
  for (const s of snapshot.services) {
    if (s.service.protocol !== 'UDP') continue;
    const serving = new Set<string>();
    for (const e of s.endpoints) if (e.serving) serving.add(`${normalizeIP(e.ip) ?? e.ip} ${e.port}`);
    const entry = { serving, key: s.service.key };
    for (const ip of serviceIPs(s)) if (ip) byAddress.set(`${normalizeIP(ip) ?? ip} ${s.service.port}`, entry);
    if (s.service.nodePort) byNodePort.set(s.service.nodePort, entry);
  }
  const filters = new Map<string, ConntrackFilter>();
  for (const e of entries) {
    const reply = `${e.replySrc} ${e.replySrcPort}`;
    const svc = byAddress.get(`${e.origDst} ${e.origDstPort}`);
    if (svc !== undefined) {
      if (svc.serving.has(reply)) continue;
      const k = `${e.origDst} ${e.origDstPort} ${reply}`;
      if (!filters.has(k))
        filters.set(k, {
          family,
          protocol: 'udp',
          origDst: e.origDst,
          origDstPort: e.origDstPort,
          replySrc: e.replySrc,
          replySrcPort: e.replySrcPort,
          reason: staleReason(svc.key, e, svc.serving),
        });
      continue;
    }
    const np = byNodePort.get(e.origDstPort);
    if (np !== undefined && !np.serving.has(reply)) {
      const k = `* ${e.origDstPort} ${reply}`;
      if (!filters.has(k))
        filters.set(k, {
          family,
          protocol: 'udp',
          origDstPort: e.origDstPort,
          replySrc: e.replySrc,
          replySrcPort: e.replySrcPort,
          reason: staleReason(np.key, e, np.serving),
        });
    }
  }
  return [...filters.values()];
}

function staleReason(key: string, e: ConntrackEntry, serving: ReadonlySet<string>): string {
  if (serving.size === 0) return `${key}: UDP service port has no serving endpoint`;
  return `${key}: UDP flow answered by ${endpointString({ ip: e.replySrc, port: e.replySrcPort })}, not a serving endpoint`;
}

/** argv for the conntrack tool. */
export function conntrackArgs(f: ConntrackFilter): string[] {
  const args = ['-D', '-p', 'udp'];
  if (f.family === 'IPv6') args.push('-f', 'ipv6');
  if (f.origDst) args.push('--orig-dst', f.origDst);
  if (f.origDstPort) args.push('--dport', String(f.origDstPort));
  if (f.replySrc) args.push('--reply-src', f.replySrc);
  if (f.replySrcPort) args.push('--reply-port-src', String(f.replySrcPort));
  return args;
}
