/**
 * The address plan of a test cluster (pure): namespace and interface names,
 * node, gateway and client addresses, routes. cluster.ts turns a plan into
 * namespaces. Every address exists only inside the cluster's namespaces.
 *
 *   underlay ns "<prefix>-underlay": bridge br0, 192.168.50.1 (the "router"),
 *     ports n1, n2, ... (nodes) and "client"
 *   node ns "<prefix>-<node>": eth0 192.168.50.(10+i) on the underlay, default
 *     route via .1, routes to the other nodes' pod CIDRs; bridge cbr0 with the
 *     first address of its pod CIDR; veth1, veth2, ... to its pods
 *   pod ns "<prefix>-<pod>": eth0 with the pod IP, default route via cbr0
 *   client ns "<prefix>-client": eth0 192.168.50.200, service ranges routed
 *     via the first node
 * With ipv6, the same shape in fd00:192:168:50::/64 and fd00:10:244:<i>::/64.
 */
import { cidrContainsText, normalizeIP, parseCIDR } from '../../proxier/ip.ts';

export interface PodSpec {
  readonly name: string;
  readonly ip: string;
  /** Default (with ClusterSpec.ipv6): the pod CIDR6 prefix + the last IPv4 octet. */
  readonly ip6?: string;
}
export interface NodeSpec {
  readonly name: string;
  readonly podCIDR: string;
  /** Default (with ClusterSpec.ipv6): fd00:10:244:<node index>::/64. */
  readonly podCIDR6?: string;
  readonly pods: readonly PodSpec[];
}
export interface ClientSpec {
  /** Node whose underlay address the service routes point to (default: the first node). */
  readonly via?: string;
  readonly routes?: readonly string[];
  readonly routes6?: readonly string[];
}
export interface ClusterSpec {
  /** Namespace name prefix, [a-z0-9]{2,16}; every namespace is "<prefix>-<name>". */
  readonly prefix: string;
  readonly nodes: readonly NodeSpec[];
  readonly client?: boolean | ClientSpec;
  /** Dual-stack: IPv6 addresses and routes next to the IPv4 ones. */
  readonly ipv6?: boolean;
}

export interface PlannedPod {
  readonly name: string;
  readonly node: string;
  readonly ns: string;
  readonly ip: string;
  readonly ip6: string | null;
  /** Interface name of the pod's veth on the node side (attached to cbr0). */
  readonly hostVeth: string;
}
export interface PlannedNode {
  readonly name: string;
  readonly ns: string;
  readonly ip: string;
  readonly ip6: string | null;
  readonly podCIDR: string;
  readonly podCIDR6: string | null;
  readonly gateway: string;
  readonly gateway6: string | null;
  readonly bridge: string;
  readonly uplink: string;
  readonly underlayPort: string;
  readonly pods: readonly PlannedPod[];
}
export interface PlannedClient {
  readonly ns: string;
  readonly ip: string;
  readonly ip6: string | null;
  readonly via: string;
  readonly routes: readonly string[];
  readonly routes6: readonly string[];
  readonly underlayPort: string;
}
export interface ClusterPlan {
  readonly prefix: string;
  readonly underlay: {
    readonly ns: string;
    readonly bridge: string;
    readonly cidr: string;
    readonly gateway: string;
    readonly cidr6: string | null;
    readonly gateway6: string | null;
  };
  readonly nodes: readonly PlannedNode[];
  readonly pods: readonly PlannedPod[];
  readonly client: PlannedClient | null;
}

export const UNDERLAY_CIDR = '192.168.50.0/24';
export const UNDERLAY_CIDR6 = 'fd00:192:168:50::/64';
/** Routed from the client via a node: the ClusterIP range and an externalIP / load-balancer range. */
export const SERVICE_ROUTES = ['172.30.0.0/16', '203.0.113.0/24'] as const;
export const SERVICE_ROUTES6 = ['fd00:172:30::/108', '2001:db8:203::/64'] as const;
const MAX_NODES = 80;

function fail(message: string): never {
  throw new Error(`cluster spec: ${message}`);
}

/** The first host address of a CIDR (network + 1): the node's bridge gateway. */
export function firstHost(cidr: string): string {
  const c = parseCIDR(cidr) ?? fail(`not a CIDR: ${JSON.stringify(cidr)}`);
  const bytes = Uint8Array.from(c.network.bytes);
  for (let i = bytes.length - 1; i >= 0; i--) {
    bytes[i] = (bytes[i]! + 1) & 0xff;
    if (bytes[i] !== 0) break;
  }
  if (c.family === 'IPv4') return bytes.join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return normalizeIP(groups.join(':')) ?? fail(`cannot format ${cidr}`);
}

export function planCluster(spec: ClusterSpec): ClusterPlan {
  const { prefix } = spec;
  if (!/^[a-z0-9]{2,16}$/.test(prefix)) fail(`prefix ${JSON.stringify(prefix)} must be 2-16 of [a-z0-9] (it must not contain "-")`);
  if (spec.nodes.length === 0 || spec.nodes.length > MAX_NODES) fail(`need 1..${MAX_NODES} nodes, got ${spec.nodes.length}`);
  const v6 = spec.ipv6 === true;
  const names = new Set(['underlay', 'client']);
  const claim = (name: string, what: string): string => {
    if (!/^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$/.test(name))
      fail(`${what} name ${JSON.stringify(name)} must be a lower-case DNS label of at most 42 characters`);
    if (names.has(name)) fail(`${what} name ${JSON.stringify(name)} is used twice (or reserved)`);
    names.add(name);
    return `${prefix}-${name}`;
  };

  const nodes = spec.nodes.map((n, i): PlannedNode => {
    const ns = claim(n.name, 'node');
    const cidr = parseCIDR(n.podCIDR);
    if (cidr?.family !== 'IPv4' || cidr.prefix > 30)
      fail(`node ${n.name}: podCIDR ${JSON.stringify(n.podCIDR)} must be an IPv4 CIDR of /30 or wider`);
    const podCIDR6 = v6 ? (n.podCIDR6 ?? `fd00:10:244:${i + 1}::/64`) : null;
    if (podCIDR6 !== null && parseCIDR(podCIDR6)?.family !== 'IPv6') fail(`node ${n.name}: podCIDR6 ${JSON.stringify(podCIDR6)} is not an IPv6 CIDR`);
    const gateway = firstHost(cidr.text);
    const gateway6 = podCIDR6 === null ? null : firstHost(podCIDR6);
    const pods = n.pods.map((p, j): PlannedPod => {
      const podNs = claim(p.name, 'pod');
      const ip = normalizeIP(p.ip);
      if (ip === null || !cidrContainsText(cidr.text, ip) || ip === gateway)
        fail(`pod ${p.name}: ip ${JSON.stringify(p.ip)} must be a host address in ${cidr.text} other than the gateway ${gateway}`);
      let ip6: string | null = null;
      if (podCIDR6 !== null) {
        const c6 = parseCIDR(podCIDR6)!;
        ip6 = normalizeIP(p.ip6 ?? `${c6.network.text.replace(/::$/, ':')}:${ip.split('.')[3]}`);
        if (ip6 === null || !cidrContainsText(podCIDR6, ip6) || ip6 === gateway6)
          fail(`pod ${p.name}: ip6 ${JSON.stringify(p.ip6)} must be a host address in ${podCIDR6} other than the gateway`);
      }
      return { name: p.name, node: n.name, ns: podNs, ip, ip6, hostVeth: `veth${j + 1}` };
    });
    return {
      name: n.name,
      ns,
      ip: `192.168.50.${10 + i + 1}`,
      ip6: v6 ? `fd00:192:168:50::${10 + i + 1}` : null,
      podCIDR: cidr.text,
      podCIDR6: podCIDR6 === null ? null : parseCIDR(podCIDR6)!.text,
      gateway,
      gateway6,
      bridge: 'cbr0',
      uplink: 'eth0',
      underlayPort: `n${i + 1}`,
      pods,
    };
  });
  const pods = nodes.flatMap((n) => n.pods);
  const podIPs = new Set<string>();
  for (const p of pods) {
    for (const ip of [p.ip, p.ip6]) {
      if (ip === null) continue;
      if (podIPs.has(ip)) fail(`pod ip ${ip} is used twice`);
      podIPs.add(ip);
    }
  }
  for (const [i, a] of nodes.entries()) {
    for (const b of nodes.slice(i + 1)) {
      if (cidrContainsText(a.podCIDR, b.gateway) || cidrContainsText(b.podCIDR, a.gateway)) fail(`pod CIDRs of ${a.name} and ${b.name} overlap`);
    }
  }

  let client: PlannedClient | null = null;
  if (spec.client !== undefined && spec.client !== false) {
    const c: ClientSpec = spec.client === true ? {} : spec.client;
    const via = c.via ?? nodes[0]!.name;
    if (!nodes.some((n) => n.name === via)) fail(`client.via ${JSON.stringify(via)} is not a node`);
    client = {
      ns: `${prefix}-client`,
      ip: '192.168.50.200',
      ip6: v6 ? 'fd00:192:168:50::200' : null,
      via,
      routes: [...(c.routes ?? SERVICE_ROUTES)],
      routes6: v6 ? [...(c.routes6 ?? SERVICE_ROUTES6)] : [],
      underlayPort: 'client',
    };
  }
  return {
    prefix,
    underlay: {
      ns: `${prefix}-underlay`,
      bridge: 'br0',
      cidr: UNDERLAY_CIDR,
      gateway: '192.168.50.1',
      cidr6: v6 ? UNDERLAY_CIDR6 : null,
      gateway6: v6 ? 'fd00:192:168:50::1' : null,
    },
    nodes,
    pods,
    client,
  };
}
