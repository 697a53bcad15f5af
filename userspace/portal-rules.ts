/**
 * Userspace mode's iptables rules (pure): "portals" that send traffic for a
 * service's IPs and node port to the proxy's own listener, in upstream's
 * chains and rule shapes (upstream pkg/proxy/userspace/proxier.go, 1.22):
 * - KUBE-PORTALS-CONTAINER (from PREROUTING: pods, other hosts) REDIRECTs to
 *   the listener (replies leave by the interface the request came in on);
 * - KUBE-PORTALS-HOST (from OUTPUT: the node itself) DNATs to hostIP:port
 *   (REDIRECT of local traffic would go to 127.0.0.1 and break UDP replies);
 * - KUBE-NODEPORT-CONTAINER / -HOST do the same for node ports, and
 *   KUBE-NODEPORT-NON-LOCAL (filter) accepts the proxy port through a
 *   default-deny INPUT policy.
 * With a specific --bind-address, container traffic is DNATed to it instead.
 */
import { endpointString, type IPFamily, type ServicePort } from '../proxier/types.ts';
import {
  KUBE_NODEPORT_CONTAINER,
  KUBE_NODEPORT_HOST,
  KUBE_NODEPORT_NON_LOCAL,
  KUBE_PORTALS_CONTAINER,
  KUBE_PORTALS_HOST,
  USERSPACE_JUMP_RULES,
} from '../iptables/chains.ts';
import { commentMatch } from '../iptables/comment.ts';
import { jumpChains } from '../iptables/jumps.ts';
import type { Chain, Ruleset } from '../iptables/ruleset.ts';

export interface PortalTarget {
  readonly service: ServicePort;
  /** Listener for cluster IP traffic. */
  readonly internalPort: number;
  /** Listener for node port, external IP and load-balancer traffic (the same one unless policies differ). */
  readonly externalPort: number;
  /** Whether the node port is held by this process (a conflict leaves the node port without rules). */
  readonly nodePortHeld: boolean;
}

export interface PortalOptions {
  readonly family: IPFamily;
  /** Node address that node-originated traffic is DNATed to. */
  readonly hostIP: string;
  /** --bind-address: unspecified (0.0.0.0 / ::) means REDIRECT for container traffic. */
  readonly bindAddress: string;
  /**
   * Match args for "from a pod of this cluster" (--detect-local-mode), or
   * null. With externalTrafficPolicy Local, pod traffic to the service's
   * external addresses goes to the internal listener (all endpoints), as the
   * iptables mode short-circuits it; node-originated traffic always does.
   */
  readonly localMatch?: string | null;
}

export function renderPortals(targets: readonly PortalTarget[], o: PortalOptions): Ruleset {
  const plen = o.family === 'IPv4' ? 32 : 128;
  const anyBind = o.bindAddress === '0.0.0.0' || o.bindAddress === '::' || o.bindAddress === '';
  const container = (port: number): string =>
    anyBind ? `-j REDIRECT --to-ports ${port}` : `-j DNAT --to-destination ${endpointString({ ip: o.bindAddress, port })}`;
  const host = (port: number): string => `-j DNAT --to-destination ${endpointString({ ip: o.hostIP, port })}`;

  const portalsContainer: string[] = [];
  const portalsHost: string[] = [];
  const nodeportContainer: string[] = [];
  const nodeportHost: string[] = [];
  const nonLocal: string[] = [];
  for (const t of targets) {
    const sp = t.service;
    const proto = sp.protocol.toLowerCase();
    const head = `${commentMatch(sp.key)} -p ${proto} -m ${proto}`;
    const vip = (ip: string): string => `${head} --dport ${sp.port} -d ${ip}/${plen}`;
    // Policies differ (eTP Local): pods' traffic to external addresses first goes to the internal listener.
    const podShortCut = t.externalPort !== t.internalPort && o.localMatch ? o.localMatch : null;
    const external = (list: string[], match: string): void => {
      if (podShortCut) list.push(`${match} ${podShortCut} ${container(t.internalPort)}`);
      list.push(`${match} ${container(t.externalPort)}`);
    };
    portalsContainer.push(`${vip(sp.clusterIP)} ${container(t.internalPort)}`);
    portalsHost.push(`${vip(sp.clusterIP)} ${host(t.internalPort)}`);
    for (const ip of sp.loadBalancerVIPs) {
      external(portalsContainer, vip(ip));
      portalsHost.push(`${vip(ip)} ${host(t.internalPort)}`);
    }
    for (const ip of sp.externalIPs) {
      // From outside the node (not bridged in from a pod), and from pods or the node when the IP is local.
      external(portalsContainer, `${vip(ip)} -m physdev ! --physdev-is-in`);
      external(portalsContainer, `${vip(ip)} -m addrtype --dst-type LOCAL`);
      portalsHost.push(`${vip(ip)} -m addrtype --dst-type LOCAL ${host(t.internalPort)}`);
    }
    if (sp.nodePort && t.nodePortHeld) {
      external(nodeportContainer, `${head} --dport ${sp.nodePort}`);
      nodeportHost.push(`${head} --dport ${sp.nodePort} ${host(t.internalPort)}`);
      nonLocal.push(`${head} --dport ${t.externalPort} -m state --state NEW -j ACCEPT`);
    }
  }

  const user = (name: string, rules: string[]): Chain => ({ name, policy: null, rules });
  return {
    family: o.family,
    tables: [
      { name: 'filter', chains: [...jumpChains(USERSPACE_JUMP_RULES, 'filter'), user(KUBE_NODEPORT_NON_LOCAL, nonLocal)] },
      {
        name: 'nat',
        chains: [
          ...jumpChains(USERSPACE_JUMP_RULES, 'nat'),
          user(KUBE_PORTALS_CONTAINER, portalsContainer),
          user(KUBE_PORTALS_HOST, portalsHost),
          user(KUBE_NODEPORT_CONTAINER, nodeportContainer),
          user(KUBE_NODEPORT_HOST, nodeportHost),
        ],
      },
    ],
  };
}

const PORTAL_CHAINS = new Set([KUBE_PORTALS_CONTAINER, KUBE_PORTALS_HOST, KUBE_NODEPORT_CONTAINER, KUBE_NODEPORT_HOST]);

/** A portal rule found in iptables-save output: traffic to dst:dport (any local address for a node port) goes to proxyPort. */
export interface LivePortal {
  readonly protocol: string;
  /** Destination IP, null for a node port rule. */
  readonly dst: string | null;
  readonly dport: number;
  readonly proxyPort: number;
}

/** The portal rules in iptables-save output of the nat table (REDIRECT --to-ports, DNAT --to-destination), in any match order. */
export function livePortals(save: string): LivePortal[] {
  const portals: LivePortal[] = [];
  for (const line of save.split('\n')) {
    if (!line.startsWith('-A ') || !PORTAL_CHAINS.has(line.slice(3, line.indexOf(' ', 3)))) continue;
    const to = /--to-ports (\d+)|--to-destination \S*:(\d+)/.exec(line);
    const dport = /--dport (\d+)/.exec(line);
    const protocol = / -p (\S+)/.exec(line);
    if (!to || !dport || !protocol) continue;
    const dst = / -d (\S+?)(?:\/\d+)?(?= )/.exec(line);
    portals.push({ protocol: protocol[1]!, dst: dst ? dst[1]! : null, dport: Number(dport[1]), proxyPort: Number(to[1] ?? to[2]) });
  }
  return portals;
}
