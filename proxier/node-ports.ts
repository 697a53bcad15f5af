/**
 * --nodeport-addresses: which of this host's addresses accept NodePort
 * traffic, per IP family, as upstream's NodePortAddresses does. The
 * candidates are passed in as data (the interface addresses the agent read
 * for the sync, or, rendering from objects alone, the Node object's addresses
 * and loopback: hostAddressesOf), so this stays pure.
 */
import { cidrContains, isLoopback, parseCIDR, parseIP } from './ip.ts';
import type { IPFamily, NodeInfo, Snapshot } from './types.ts';

export interface NodePortAddresses {
  /** No restriction (flag unset, or a 0.0.0.0/0 / ::/0 entry). */
  readonly matchAll: boolean;
  /** When not matchAll: the local addresses inside the configured CIDRs. */
  readonly ips: readonly string[];
  /** Whether 127.0.0.1 is selected (localhost NodePorts are only possible then). */
  readonly containsIPv4Loopback: boolean;
}

/**
 * --nodeport-addresses keywords other than "primary" (v1.37, #138427), as the CIDRs of each family they stand for.
 * "primary" (the node IP of each family) is the third; any of them may be combined with each other and with CIDRs.
 */
export const KEYWORD_CIDRS: Readonly<Record<string, Readonly<Record<IPFamily, string>>>> = {
  localhost: { IPv4: '127.0.0.0/8', IPv6: '::1/128' },
  all: { IPv4: '0.0.0.0/0', IPv6: '::/0' },
};

export const NODE_PORT_KEYWORDS: readonly string[] = ['primary', ...Object.keys(KEYWORD_CIDRS)];

export interface NodePortAddressInput {
  /** Flag values: CIDRs of any family, and the keywords "primary", "localhost" and "all". */
  readonly cidrs: readonly string[];
  readonly family: IPFamily;
  /** This host's addresses (any family), as hostAddressesOf gives them: the selection is made among these only. */
  readonly localAddresses: readonly string[];
  /** The node's primary IP of this family, for "primary". */
  readonly primaryIP: string | null;
}

export function selectNodePortAddresses(input: NodePortAddressInput): NodePortAddresses {
  const all = input.family === 'IPv4' ? '0.0.0.0/0' : '::/0';
  if (input.cidrs.length === 0) return { matchAll: true, ips: [], containsIPv4Loopback: input.family === 'IPv4' };

  const cidrs = [];
  for (const text of input.cidrs) {
    if (text === 'primary') {
      if (input.primaryIP && !isLoopbackText(input.primaryIP)) cidrs.push(parseCIDR(`${input.primaryIP}/${input.family === 'IPv4' ? 32 : 128}`)!);
      continue;
    }
    // v1.37's other keywords (server.go expands them into each family's CIDRs before the proxiers see them).
    const c = parseCIDR(KEYWORD_CIDRS[text]?.[input.family] ?? text);
    if (c && c.family === input.family) cidrs.push(c);
  }
  // Upstream NewNodePortAddresses: a family with no CIDR listed gets 0.0.0.0/0 (::/0), i.e. every
  // address, 127.0.0.1 included. So does "primary" for a family the node has no IP of (server.go
  // turns "primary" into the node IP of each family that has one).
  if (cidrs.length === 0 || cidrs.some((c) => c.text === all)) return { matchAll: true, ips: [], containsIPv4Loopback: input.family === 'IPv4' };

  // Upstream GetNodeIPs: the interface addresses inside any CIDR, each once (upstream's order is a map's; ours the
  // interfaces', so that an unchanged host gives the same rules).
  const ips: string[] = [];
  for (const text of input.localAddresses) {
    const ip = parseIP(text);
    if (ip && !ips.includes(ip.text) && cidrs.some((c) => cidrContains(c, ip))) ips.push(ip.text);
  }
  const lo = parseIP('127.0.0.1')!;
  return {
    matchAll: false,
    ips,
    containsIPv4Loopback: input.family === 'IPv4' && cidrs.some((c) => cidrContains(c, lo)),
  };
}

/** Whether an address (text) is a loopback address. */
export function isLoopbackText(text: string): boolean {
  const ip = parseIP(text);
  return ip !== null && isLoopback(ip);
}

/**
 * Where a snapshot's NodePorts may be: this host's interface addresses as read for the sync (upstream GetNodeIPs lists
 * net.InterfaceAddrs), else, for a snapshot made from objects alone (render, trace --objects), the Node object's
 * addresses and loopback, which stand in for the interfaces of a node that has its Node addresses on them.
 */
export function hostAddressesOf(snapshot: Pick<Snapshot, 'node' | 'hostAddresses'>): readonly string[] {
  return snapshot.hostAddresses ?? [...snapshot.node.addresses, '127.0.0.1', '::1'];
}

/** The node IP of a family (NodeInfo's primary or secondary IP, upstream's NodeIPs[family]); null when it has none. */
export function primaryIPOf(node: Pick<NodeInfo, 'primaryIP' | 'secondaryIP'>, family: IPFamily): string | null {
  return [node.primaryIP, node.secondaryIP].find((ip) => ip !== null && parseIP(ip)?.family === family) ?? null;
}

/**
 * The node IP a load balancer's source ranges are checked against (whether the node may reach it through its VIP):
 * upstream detectNodeIPs starts from 127.0.0.1 and ::1, so a family without a node IP checks loopback.
 */
export function rangeCheckNodeIP(node: Pick<NodeInfo, 'primaryIP' | 'secondaryIP'>, family: IPFamily): string {
  return primaryIPOf(node, family) ?? (family === 'IPv4' ? '127.0.0.1' : '::1');
}
