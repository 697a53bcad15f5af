/**
 * A small Kubernetes-shaped cluster made of network namespaces, for the
 * end-to-end tests, the demo and the benchmarks (address plan: see
 * address-plan.ts). Nodes route and bridge with
 * net.bridge.bridge-nf-call-iptables=1 (per namespace on Linux >= 5.3), so
 * pod-to-ClusterIP-to-pod traffic on one bridge is un-DNATed on its way back.
 *
 *   const cluster = await createCluster({ prefix: 'smoke', nodes: [{ name: 'node-1', podCIDR: '10.244.1.0/24',
 *     pods: [{ name: 'pod-a', ip: '10.244.1.2' }] }], client: true });
 *   try { ... cluster.exec(cluster.node('node-1').ns, 'iptables-save', []) ... } finally { await cluster.destroy(); }
 *
 * createCluster first sweeps namespaces left over under the same prefix, and
 * removes what it built when it fails half-way.
 */
import type { CommandRunner, RunResult } from '../../proxier/exec.ts';
import { createExecaRunner, type ExecaRunner } from '../../src/system/exec.ts';
import { createNetnsOps, type NetnsOps } from '../../src/system/netns.ts';
import { planCluster, type ClusterPlan, type ClusterSpec, type PlannedClient, type PlannedNode, type PlannedPod } from './address-plan.ts';
import { startPodServers, type PodServerOptions, type PodServers } from './servers.ts';
import { createTrafficClients, type TrafficClient } from './traffic.ts';

export type { ClusterSpec, NodeSpec, PodSpec, ClientSpec } from './address-plan.ts';
/** The one-node layout many tests share: node-1 (pod CIDR 10.244.1.0/24) with pod-a (10.244.1.2) and pod-b (10.244.1.3). */
export const NODE_1_TWO_PODS = {
  name: 'node-1',
  podCIDR: '10.244.1.0/24',
  pods: [
    { name: 'pod-a', ip: '10.244.1.2' },
    { name: 'pod-b', ip: '10.244.1.3' },
  ],
} as const;
export type ClusterNode = PlannedNode;
export type ClusterPod = PlannedPod;
export type ClusterClient = PlannedClient;

export interface ClusterOptions extends ClusterSpec {
  readonly runner?: ExecaRunner;
}

export interface Cluster extends ClusterPlan {
  readonly runner: ExecaRunner;
  readonly net: NetnsOps;
  /** Every namespace of the cluster. */
  readonly namespaces: readonly string[];
  node(name: string): ClusterNode;
  pod(name: string): ClusterPod;
  /** Runs a command inside one of this cluster's namespaces (any other name is refused). */
  exec(ns: string, cmd: string, args: readonly string[], opts?: { input?: string; timeoutMs?: number }): Promise<RunResult>;
  /** A CommandRunner bound to one of this cluster's namespaces (what the agent, iptables and nft adapters take). */
  runnerIn(ns: string): CommandRunner;
  /** The traffic client process kept in one of this cluster's namespaces (test/netns/traffic.ts uses it). */
  trafficClient(ns: string): TrafficClient;
  /** Starts pod-server.ts in the pods (all by default); destroy() stops them. */
  startPodServers(opts: PodServerOptions): Promise<PodServers>;
  /** Stops the servers and deletes every namespace; safe to call twice. */
  destroy(): Promise<void>;
}

/**
 * Sysctls of each namespace. Nodes route (ip_forward) and pass bridged frames
 * through iptables (bridge-nf-call-*), as kubelet's bridge setups do; the
 * underlay bridge is a plain switch. Everywhere: no ICMP error rate limit (a
 * test sends many rejected requests in a row; the default allows a burst of 6
 * then 1/s per peer), no ICMP redirects (a node forwarding out of the
 * interface it received on sends one, which also uses up the peer's
 * rate-limit budget and swallows the next REJECT's ICMP error), and with IPv6
 * no duplicate address detection (it delays forwarded IPv6 by ~2 s).
 */
function namespaceSysctls(plan: ClusterPlan, ns: string): Record<string, number> {
  const v6 = plan.underlay.gateway6 !== null;
  const values: Record<string, number> = {
    'net.ipv4.icmp_ratelimit': 0,
    'net.ipv4.conf.all.send_redirects': 0,
    'net.ipv4.conf.default.send_redirects': 0,
    ...(v6 ? { 'net.ipv6.icmp.ratelimit': 0, 'net.ipv6.conf.all.accept_dad': 0, 'net.ipv6.conf.default.accept_dad': 0 } : {}),
  };
  if (ns === plan.underlay.ns) return { ...values, 'net.bridge.bridge-nf-call-iptables': 0, 'net.bridge.bridge-nf-call-ip6tables': 0 };
  if (plan.nodes.some((n) => n.ns === ns)) {
    return {
      ...values,
      'net.ipv4.ip_forward': 1,
      'net.bridge.bridge-nf-call-iptables': 1,
      'net.bridge.bridge-nf-call-ip6tables': 1,
      ...(v6 ? { 'net.ipv6.conf.all.forwarding': 1 } : {}),
    };
  }
  return values;
}

async function buildTopology(net: NetnsOps, plan: ClusterPlan): Promise<void> {
  const { underlay, nodes, client } = plan;
  const all = [underlay.ns, ...nodes.map((n) => n.ns), ...plan.pods.map((p) => p.ns), ...(client ? [client.ns] : [])];
  await Promise.all(all.map((ns) => net.addNamespace(ns)));
  // Before any link exists, so that conf.default reaches every interface created later.
  await Promise.all(all.map((ns) => net.setSysctls(ns, namespaceSysctls(plan, ns))));

  // The underlay: a plain L2 switch (no netfilter on bridged frames) with the "router" address.
  const ul: string[][] = [['link', 'add', underlay.bridge, 'type', 'bridge']];
  const ports = [...nodes.map((n) => ({ port: n.underlayPort, ns: n.ns })), ...(client ? [{ port: client.underlayPort, ns: client.ns }] : [])];
  for (const { port, ns } of ports) {
    ul.push(
      ['link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns],
      ['link', 'set', port, 'master', underlay.bridge],
      ['link', 'set', port, 'up'],
    );
  }
  ul.push(['addr', 'replace', `${underlay.gateway}/24`, 'dev', underlay.bridge]);
  if (underlay.gateway6 !== null) ul.push(['addr', 'replace', `${underlay.gateway6}/64`, 'dev', underlay.bridge, 'nodad']);
  ul.push(['link', 'set', underlay.bridge, 'up']);
  await net.ipBatch(underlay.ns, ul);

  await Promise.all([
    ...nodes.map(async (node) => {
      const b: string[][] = [['link', 'add', node.bridge, 'type', 'bridge']];
      b.push(['addr', 'replace', `${node.gateway}/${node.podCIDR.split('/')[1]}`, 'dev', node.bridge]);
      if (node.gateway6 !== null) b.push(['addr', 'replace', `${node.gateway6}/${node.podCIDR6?.split('/')[1]}`, 'dev', node.bridge, 'nodad']);
      b.push(['link', 'set', node.bridge, 'up']);
      for (const pod of node.pods) {
        b.push(['link', 'add', pod.hostVeth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod.ns]);
        // Hairpin: with br_netfilter, a pod DNATed to itself is bridged back out of the port it came in on.
        b.push(['link', 'set', pod.hostVeth, 'master', node.bridge], ['link', 'set', pod.hostVeth, 'type', 'bridge_slave', 'hairpin', 'on']);
        b.push(['link', 'set', pod.hostVeth, 'up']);
      }
      b.push(['addr', 'replace', `${node.ip}/24`, 'dev', node.uplink]);
      if (node.ip6 !== null) b.push(['addr', 'replace', `${node.ip6}/64`, 'dev', node.uplink, 'nodad']);
      b.push(['link', 'set', node.uplink, 'up'], ['route', 'replace', 'default', 'via', underlay.gateway]);
      if (underlay.gateway6 !== null) b.push(['route', 'replace', '::/0', 'via', underlay.gateway6]);
      for (const other of nodes) {
        if (other === node) continue;
        b.push(['route', 'replace', other.podCIDR, 'via', other.ip]);
        if (other.podCIDR6 !== null && other.ip6 !== null) b.push(['route', 'replace', other.podCIDR6, 'via', other.ip6]);
      }
      await net.ipBatch(node.ns, b);
    }),
    ...(client
      ? [
          (async () => {
            const via = nodes.find((n) => n.name === client.via)!;
            const c: string[][] = [['addr', 'replace', `${client.ip}/24`, 'dev', 'eth0']];
            if (client.ip6 !== null) c.push(['addr', 'replace', `${client.ip6}/64`, 'dev', 'eth0', 'nodad']);
            c.push(['link', 'set', 'eth0', 'up']);
            for (const r of client.routes) c.push(['route', 'replace', r, 'via', via.ip]);
            for (const r of client.routes6) c.push(['route', 'replace', r, 'via', via.ip6 ?? '']);
            await net.ipBatch(client.ns, c);
          })(),
        ]
      : []),
  ]);

  await Promise.all(
    nodes.flatMap((node) =>
      node.pods.map(async (pod) => {
        const p: string[][] = [['addr', 'replace', `${pod.ip}/${node.podCIDR.split('/')[1]}`, 'dev', 'eth0']];
        if (pod.ip6 !== null) p.push(['addr', 'replace', `${pod.ip6}/${node.podCIDR6?.split('/')[1]}`, 'dev', 'eth0', 'nodad']);
        p.push(['link', 'set', 'eth0', 'up'], ['route', 'replace', 'default', 'via', node.gateway]);
        if (node.gateway6 !== null) p.push(['route', 'replace', '::/0', 'via', node.gateway6]);
        await net.ipBatch(pod.ns, p);
      }),
    ),
  );
}

export async function createCluster(options: ClusterOptions): Promise<Cluster> {
  const plan = planCluster(options);
  const runner = options.runner ?? createExecaRunner();
  const net = createNetnsOps({ runner });
  const namespaces = [plan.underlay.ns, ...plan.nodes.map((n) => n.ns), ...plan.pods.map((p) => p.ns), ...(plan.client ? [plan.client.ns] : [])];
  const servers: PodServers[] = [];
  const clients = createTrafficClients();
  let destroyed = false;

  const destroy = async (): Promise<void> => {
    destroyed = true;
    clients.close();
    await Promise.all(servers.splice(0).map((s) => s.stop()));
    // Deleting a namespace takes its veth ends (and their peers) with it.
    await Promise.all(namespaces.map((ns) => net.deleteNamespace(ns)));
  };

  const check = (ns: string): void => {
    if (!namespaces.includes(ns))
      throw new Error(`cluster ${plan.prefix}: ${JSON.stringify(ns)} is not one of its namespaces (${namespaces.join(', ')})`);
    if (destroyed) throw new Error(`cluster ${plan.prefix} is destroyed`);
  };
  const exec = async (ns: string, cmd: string, args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> => {
    check(ns);
    return runner.run(cmd, args, { ...opts, netns: ns });
  };

  await net.sweepNamespaces(plan.prefix);
  try {
    await buildTopology(net, plan);
  } catch (err) {
    await destroy().catch(() => undefined);
    throw err;
  }

  return {
    ...plan,
    runner,
    net,
    namespaces,
    node(name) {
      return plan.nodes.find((n) => n.name === name) ?? missing('node', name);
    },
    pod(name) {
      return plan.pods.find((p) => p.name === name) ?? missing('pod', name);
    },
    exec,
    runnerIn(ns) {
      return { netns: ns, run: (cmd, args, opts) => exec(ns, cmd, args, opts) };
    },
    trafficClient(ns) {
      check(ns);
      return clients.in(ns);
    },
    async startPodServers(opts) {
      if (destroyed) throw new Error(`cluster ${plan.prefix} is destroyed`);
      const s = await startPodServers(plan.pods, opts);
      servers.push(s);
      return s;
    },
    destroy,
  };
}

function missing(what: string, name: string): never {
  throw new Error(`no ${what} named ${JSON.stringify(name)}`);
}
