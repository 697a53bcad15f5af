/**
 * One table of packet flows per service shape and configuration, run three
 * ways: through render -> fake iptables -> tracer (test/flows.test.ts, no
 * root), through the real kernel in network namespaces with real TCP/UDP
 * (test/flows.e2e.test.ts), and later through userspace mode. A case that one
 * runner cannot check carries a skip with its reason.
 *
 * The address plan is the namespace harness's (test/netns/address-plan.ts):
 * node-1 (192.168.50.11, pods 10.244.1.0/24) runs kube-proxy-ts; node-2
 * (192.168.50.12, pods 10.244.2.0/24) is a remote node; the client
 * (192.168.50.200) is an outside host that routes 172.30.0.0/16 (cluster IPs)
 * and 203.0.113.0/24 (external and load-balancer IPs) via node-1.
 */
import { makeEndpointSlice, makeNode, makeService } from './builders.ts';
import type { NodeSpec } from './netns/cluster.ts';

export const NODE1 = '192.168.50.11';
export const NODE2 = '192.168.50.12';
export const CLIENT = '192.168.50.200';
/**
 * A second address of node-1 that node-originated test traffic is sent from,
 * so masquerading is visible even toward node-2 (where it rewrites the
 * source to 192.168.50.11, the address the node would have used anyway).
 */
export const NODE1_SECONDARY = '192.168.51.11';
export const NODE1_6 = 'fd00:192:168:50::11';
export const NODE1_SECONDARY_6 = 'fd00:192:168:51::11';
export const CLIENT_6 = 'fd00:192:168:50::200';
export const TARGET_PORT = 8080;

export const PODS = {
  'pod-a': { ip: '10.244.1.2', ip6: 'fd00:10:244:1::2', node: 'node-1' },
  'pod-b': { ip: '10.244.1.3', ip6: 'fd00:10:244:1::3', node: 'node-1' },
  'pod-c': { ip: '10.244.2.2', ip6: 'fd00:10:244:2::2', node: 'node-2' },
} as const;
export type PodName = keyof typeof PODS;

/** The namespace cluster every packet-flow run builds (createCluster's nodes): node-1 with pod-a and pod-b, node-2 with pod-c. */
export const FLOW_NODES: readonly NodeSpec[] = [
  {
    name: 'node-1',
    podCIDR: '10.244.1.0/24',
    pods: [
      { name: 'pod-a', ip: PODS['pod-a'].ip },
      { name: 'pod-b', ip: PODS['pod-b'].ip },
    ],
  },
  { name: 'node-2', podCIDR: '10.244.2.0/24', pods: [{ name: 'pod-c', ip: PODS['pod-c'].ip }] },
];

/** Where a packet starts: a pod on node-1, the node itself, loopback on the node, or the outside client. */
export type Source = 'pod-a' | 'pod-b' | 'node' | 'localhost' | 'client';

export interface FlowCase {
  readonly name: string;
  readonly from: Source;
  readonly proto?: 'TCP' | 'UDP';
  readonly to: string;
  readonly port: number;
  /**
   * Pods that answer (every one must be reached, none other), REJECT, DROP,
   * or NONE (no kube-proxy rule applies: the packet goes to the address as is).
   */
  readonly expect: readonly PodName[] | 'REJECT' | 'DROP' | 'NONE';
  /** Whether the endpoint sees a rewritten source address. */
  readonly masq?: boolean;
  /** ClientIP affinity: every request of one client reaches the same pod. */
  readonly sticky?: boolean;
  readonly skipKernel?: string;
  readonly skipTrace?: string;
}

export interface FlowScenario {
  readonly name: string;
  readonly family?: 'IPv4' | 'IPv6';
  /** Flag overrides on top of --hostname-override node-1 --cluster-cidr 10.244.0.0/16. */
  readonly flags?: Readonly<Record<string, string | boolean | number | readonly string[]>>;
  readonly services: () => readonly unknown[];
  readonly slices: () => readonly unknown[];
  readonly flows: readonly FlowCase[];
  /** Sysctls the kernel run sets in node-1 (upstream sets route_localnet for localhost NodePorts). */
  readonly sysctls?: Readonly<Record<string, string>>;
}

export function nodes(): unknown[] {
  return [
    makeNode('node-1', { addresses: [NODE1, NODE1_6], zone: 'zone-a', podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'] }),
    makeNode('node-2', { addresses: [NODE2, 'fd00:192:168:50::12'], zone: 'zone-b', podCIDRs: ['10.244.2.0/24', 'fd00:10:244:2::/64'] }),
  ];
}

const http = [{ name: 'p80', port: TARGET_PORT }];
function eps(svc: string, pods: readonly PodName[], extra: { ports?: unknown[]; conditions?: Record<string, boolean> } = {}): unknown {
  return makeEndpointSlice('ns1', svc, {
    endpoints: pods.map((p) => ({ ip: PODS[p].ip, nodeName: PODS[p].node, ...(extra.conditions ? { conditions: extra.conditions } : {}) })),
    ports: extra.ports ?? http,
  });
}
const port80 = (over: Record<string, unknown> = {}) => [{ name: 'p80', port: 80, targetPort: TARGET_PORT, protocol: 'TCP', ...over }];

/** Every service shape at once: one ruleset, many flows. */
const main: FlowScenario = {
  name: 'service shapes (cluster CIDR detection)',
  sysctls: { 'net.ipv4.conf.all.route_localnet': '1' },
  services: () => [
    makeService('ns1', 'cluster', { clusterIP: '172.30.0.10', ports: port80() }),
    makeService('ns1', 'dns', { clusterIP: '172.30.0.11', ports: [{ name: 'dns', port: 53, targetPort: TARGET_PORT, protocol: 'UDP' }] }),
    makeService('ns1', 'hairpin', { clusterIP: '172.30.0.12', ports: port80() }),
    makeService('ns1', 'nodeport', { type: 'NodePort', clusterIP: '172.30.0.13', ports: port80({ nodePort: 30080 }) }),
    makeService('ns1', 'external', { clusterIP: '172.30.0.14', externalIPs: ['203.0.113.10'], ports: port80() }),
    makeService('ns1', 'lb', {
      type: 'LoadBalancer',
      clusterIP: '172.30.0.15',
      ports: port80({ nodePort: 30081 }),
      loadBalancerSourceRanges: ['192.168.50.128/25'],
      loadBalancerIP: '203.0.113.20',
    }),
    makeService('ns1', 'local', {
      type: 'LoadBalancer',
      clusterIP: '172.30.0.16',
      ports: port80({ nodePort: 30082 }),
      loadBalancerIP: '203.0.113.21',
      externalTrafficPolicy: 'Local',
      healthCheckNodePort: 32082,
    }),
    makeService('ns1', 'local-none', {
      type: 'NodePort',
      clusterIP: '172.30.0.17',
      ports: port80({ nodePort: 30083 }),
      externalTrafficPolicy: 'Local',
    }),
    makeService('ns1', 'itp', { clusterIP: '172.30.0.18', ports: port80(), internalTrafficPolicy: 'Local' }),
    makeService('ns1', 'itp-none', { clusterIP: '172.30.0.19', ports: port80(), internalTrafficPolicy: 'Local' }),
    makeService('ns1', 'empty', {
      type: 'NodePort',
      clusterIP: '172.30.0.20',
      externalIPs: ['203.0.113.11'],
      ports: [...port80({ nodePort: 30084 }), { name: 'dns', port: 53, targetPort: TARGET_PORT, protocol: 'UDP', nodePort: 30085 }],
    }),
    makeService('ns1', 'sticky', { clusterIP: '172.30.0.21', ports: port80(), sessionAffinity: 'ClientIP', sessionAffinityTimeout: 600 }),
  ],
  slices: () => [
    eps('cluster', ['pod-a', 'pod-b', 'pod-c']),
    eps('dns', ['pod-a', 'pod-c'], { ports: [{ name: 'dns', port: TARGET_PORT, protocol: 'UDP' }] }),
    eps('hairpin', ['pod-a']),
    eps('nodeport', ['pod-a', 'pod-c']),
    eps('external', ['pod-b']),
    eps('lb', ['pod-b', 'pod-c']),
    eps('local', ['pod-b', 'pod-c']),
    eps('local-none', ['pod-c']),
    eps('itp', ['pod-a', 'pod-c']),
    eps('itp-none', ['pod-c']),
    eps('sticky', ['pod-a', 'pod-b', 'pod-c']),
  ],
  flows: [
    // Its own endpoint sees it masqueraded (hairpin), the others see the pod's address: masquerading is checked below.
    {
      name: 'pod -> ClusterIP reaches every endpoint, itself included',
      from: 'pod-b',
      to: '172.30.0.10',
      port: 80,
      expect: ['pod-a', 'pod-b', 'pod-c'],
    },
    { name: 'pod -> ClusterIP, other endpoints only', from: 'pod-a', to: '172.30.0.14', port: 80, expect: ['pod-b'], masq: false },
    { name: 'node -> ClusterIP is masqueraded', from: 'node', to: '172.30.0.10', port: 80, expect: ['pod-a', 'pod-b', 'pod-c'], masq: true },
    { name: 'outside -> ClusterIP is masqueraded', from: 'client', to: '172.30.0.10', port: 80, expect: ['pod-a', 'pod-b', 'pod-c'], masq: true },
    { name: 'UDP pod -> ClusterIP', from: 'pod-b', proto: 'UDP', to: '172.30.0.11', port: 53, expect: ['pod-a', 'pod-c'], masq: false },
    { name: 'UDP outside -> ClusterIP', from: 'client', proto: 'UDP', to: '172.30.0.11', port: 53, expect: ['pod-a', 'pod-c'], masq: true },
    { name: 'hairpin: a pod reaching itself is masqueraded', from: 'pod-a', to: '172.30.0.12', port: 80, expect: ['pod-a'], masq: true },
    { name: 'outside -> NodePort', from: 'client', to: NODE1, port: 30080, expect: ['pod-a', 'pod-c'], masq: true },
    { name: 'node -> own NodePort', from: 'node', to: NODE1, port: 30080, expect: ['pod-a', 'pod-c'], masq: true },
    { name: 'localhost -> NodePort', from: 'localhost', to: '127.0.0.1', port: 30080, expect: ['pod-a', 'pod-c'], masq: true },
    { name: 'pod -> NodePort', from: 'pod-b', to: NODE1, port: 30080, expect: ['pod-a', 'pod-c'], masq: true },
    { name: 'outside -> externalIP', from: 'client', to: '203.0.113.10', port: 80, expect: ['pod-b'], masq: true },
    {
      name: 'outside -> LB VIP, source in loadBalancerSourceRanges',
      from: 'client',
      to: '203.0.113.20',
      port: 80,
      expect: ['pod-b', 'pod-c'],
      masq: true,
    },
    { name: 'pod -> LB VIP, source not in ranges: dropped', from: 'pod-a', to: '203.0.113.20', port: 80, expect: 'DROP' },
    { name: 'NodePort bypasses loadBalancerSourceRanges', from: 'pod-a', to: NODE1, port: 30081, expect: ['pod-b', 'pod-c'], masq: true },
    {
      name: 'eTP Local: outside -> NodePort keeps the client IP, local endpoints only',
      from: 'client',
      to: NODE1,
      port: 30082,
      expect: ['pod-b'],
      masq: false,
    },
    { name: 'eTP Local: outside -> LB VIP keeps the client IP', from: 'client', to: '203.0.113.21', port: 80, expect: ['pod-b'], masq: false },
    {
      name: 'eTP Local: pod -> LB VIP short-circuits to all endpoints',
      from: 'pod-a',
      to: '203.0.113.21',
      port: 80,
      expect: ['pod-b', 'pod-c'],
      masq: false,
    },
    {
      name: 'eTP Local: node -> NodePort reaches all endpoints, masqueraded',
      from: 'node',
      to: NODE1,
      port: 30082,
      expect: ['pod-b', 'pod-c'],
      masq: true,
    },
    { name: 'eTP Local: ClusterIP is not affected', from: 'pod-a', to: '172.30.0.16', port: 80, expect: ['pod-b', 'pod-c'], masq: false },
    {
      name: 'eTP Local: health check node port is accepted',
      from: 'client',
      to: NODE1,
      port: 32082,
      expect: 'NONE',
      skipKernel: "the health check server is the agent's (tested with it)",
    },
    { name: 'eTP Local without local endpoints: outside -> NodePort dropped', from: 'client', to: NODE1, port: 30083, expect: 'DROP' },
    {
      name: 'eTP Local without local endpoints: pod still reaches remote ones',
      from: 'pod-a',
      to: NODE1,
      port: 30083,
      expect: ['pod-c'],
      masq: false,
    },
    { name: 'iTP Local: only the local endpoint', from: 'pod-b', to: '172.30.0.18', port: 80, expect: ['pod-a'], masq: false },
    { name: 'iTP Local without local endpoints: dropped', from: 'pod-b', to: '172.30.0.19', port: 80, expect: 'DROP' },
    { name: 'no endpoints: ClusterIP rejected', from: 'pod-a', to: '172.30.0.20', port: 80, expect: 'REJECT' },
    { name: 'no endpoints: UDP ClusterIP rejected', from: 'pod-a', proto: 'UDP', to: '172.30.0.20', port: 53, expect: 'REJECT' },
    { name: 'no endpoints: UDP NodePort rejected', from: 'client', proto: 'UDP', to: NODE1, port: 30085, expect: 'REJECT' },
    { name: 'no endpoints: NodePort rejected', from: 'client', to: NODE1, port: 30084, expect: 'REJECT' },
    { name: 'no endpoints: externalIP rejected', from: 'client', to: '203.0.113.11', port: 80, expect: 'REJECT' },
    { name: 'no endpoints: node -> ClusterIP rejected', from: 'node', to: '172.30.0.20', port: 80, expect: 'REJECT' },
    {
      name: 'ClientIP affinity sticks to one endpoint',
      from: 'client',
      to: '172.30.0.21',
      port: 80,
      expect: ['pod-a', 'pod-b', 'pod-c'],
      sticky: true,
      masq: true,
    },
    {
      name: 'wrong port of a service IP is not captured',
      from: 'pod-a',
      to: '172.30.0.10',
      port: 81,
      expect: 'NONE',
      skipKernel: 'nothing answers an unknown cluster IP',
    },
  ],
};

const cluster = () => [
  makeService('ns1', 'cluster', { clusterIP: '172.30.0.10', ports: port80() }),
  makeService('ns1', 'nodeport', { type: 'NodePort', clusterIP: '172.30.0.13', ports: port80({ nodePort: 30080 }) }),
  makeService('ns1', 'local', { type: 'NodePort', clusterIP: '172.30.0.16', ports: port80({ nodePort: 30082 }), externalTrafficPolicy: 'Local' }),
];
const clusterSlices = () => [eps('cluster', ['pod-b', 'pod-c']), eps('nodeport', ['pod-b', 'pod-c']), eps('local', ['pod-b', 'pod-c'])];

const noDetector: FlowScenario = {
  name: 'no local-traffic detection (no --cluster-cidr)',
  flags: { 'cluster-cidr': '' },
  services: () => [...cluster(), makeService('ns1', 'on-node', { clusterIP: '172.30.0.40', ports: port80() })],
  slices: () => [...clusterSlices(), eps('on-node', ['pod-b'])],
  flows: [
    { name: 'pod -> ClusterIP not masqueraded', from: 'pod-a', to: '172.30.0.10', port: 80, expect: ['pod-b', 'pod-c'], masq: false },
    // To a remote pod this would break: its reply bypasses node-1 (why upstream masquerades off-cluster traffic).
    { name: 'outside -> ClusterIP not masqueraded either', from: 'client', to: '172.30.0.40', port: 80, expect: ['pod-b'], masq: false },
    { name: 'eTP Local: pods get no short-circuit, only local endpoints', from: 'pod-a', to: NODE1, port: 30082, expect: ['pod-b'], masq: false },
  ],
};

const masqueradeAll: FlowScenario = {
  name: '--masquerade-all',
  flags: { 'masquerade-all': true },
  services: cluster,
  slices: clusterSlices,
  flows: [{ name: 'pod -> ClusterIP masqueraded', from: 'pod-a', to: '172.30.0.10', port: 80, expect: ['pod-b', 'pod-c'], masq: true }],
};

const masqueradeBit: FlowScenario = {
  name: '--iptables-masquerade-bit 5',
  flags: { 'iptables-masquerade-bit': 5 },
  services: cluster,
  slices: clusterSlices,
  flows: [
    { name: 'outside -> ClusterIP masqueraded with mark 0x20', from: 'client', to: '172.30.0.10', port: 80, expect: ['pod-b', 'pod-c'], masq: true },
    { name: 'pod -> ClusterIP not masqueraded', from: 'pod-a', to: '172.30.0.10', port: 80, expect: ['pod-b', 'pod-c'], masq: false },
  ],
};

const nodePortAddresses: FlowScenario = {
  name: '--nodeport-addresses 192.168.50.11/32',
  flags: { 'nodeport-addresses': ['192.168.50.11/32'] },
  sysctls: { 'net.ipv4.conf.all.route_localnet': '1' },
  services: cluster,
  slices: clusterSlices,
  flows: [
    { name: 'outside -> NodePort on the selected address', from: 'client', to: NODE1, port: 30080, expect: ['pod-b', 'pod-c'], masq: true },
    { name: 'localhost -> NodePort not captured (loopback not selected)', from: 'localhost', to: '127.0.0.1', port: 30080, expect: 'NONE' },
  ],
};

const noLocalhostNodePorts: FlowScenario = {
  name: '--iptables-localhost-nodeports=false',
  flags: { 'iptables-localhost-nodeports': false },
  sysctls: { 'net.ipv4.conf.all.route_localnet': '1' },
  services: cluster,
  slices: clusterSlices,
  flows: [
    { name: 'localhost -> NodePort not captured', from: 'localhost', to: '127.0.0.1', port: 30080, expect: 'NONE' },
    { name: 'node address -> NodePort still works', from: 'node', to: NODE1, port: 30080, expect: ['pod-b', 'pod-c'], masq: true },
  ],
};

function detectScenario(name: string, flags: Record<string, string>): FlowScenario {
  return {
    name,
    flags,
    services: cluster,
    slices: clusterSlices,
    flows: [
      { name: 'pod traffic is local: not masqueraded', from: 'pod-a', to: '172.30.0.10', port: 80, expect: ['pod-b', 'pod-c'], masq: false },
      { name: 'outside traffic is masqueraded', from: 'client', to: '172.30.0.10', port: 80, expect: ['pod-b', 'pod-c'], masq: true },
      { name: 'eTP Local pod short-circuit', from: 'pod-a', to: NODE1, port: 30082, expect: ['pod-b', 'pod-c'], masq: false },
    ],
  };
}

const terminating: FlowScenario = {
  name: 'terminating endpoints',
  services: () => [
    makeService('ns1', 'draining', { clusterIP: '172.30.0.30', ports: port80() }),
    makeService('ns1', 'mixed', { clusterIP: '172.30.0.31', ports: port80() }),
    makeService('ns1', 'gone', { clusterIP: '172.30.0.32', ports: port80() }),
  ],
  slices: () => [
    eps('draining', ['pod-a', 'pod-b'], { conditions: { ready: false, serving: true, terminating: true } }),
    makeEndpointSlice('ns1', 'mixed', {
      endpoints: [
        { ip: PODS['pod-a'].ip, nodeName: 'node-1', conditions: { ready: true, serving: true, terminating: false } },
        { ip: PODS['pod-b'].ip, nodeName: 'node-1', conditions: { ready: false, serving: true, terminating: true } },
      ],
      ports: http,
    }),
    eps('gone', ['pod-a'], { conditions: { ready: false, serving: false, terminating: true } }),
  ],
  flows: [
    { name: 'only serving-terminating endpoints: still used', from: 'client', to: '172.30.0.30', port: 80, expect: ['pod-a', 'pod-b'], masq: true },
    { name: 'ready endpoints win over terminating ones', from: 'client', to: '172.30.0.31', port: 80, expect: ['pod-a'], masq: true },
    { name: 'terminating and not serving: no endpoints, rejected', from: 'client', to: '172.30.0.32', port: 80, expect: 'REJECT' },
  ],
};

const dual = (name: string, v4: string, v6: string, o: Record<string, unknown> = {}) =>
  makeService('ns1', name, { clusterIPs: [v4, v6], ports: port80(), ...o });
function eps6(svc: string, pods: readonly PodName[]): unknown {
  return makeEndpointSlice('ns1', svc, `${svc}-v6`, { endpoints: pods.map((p) => ({ ip: PODS[p].ip6, nodeName: PODS[p].node })), ports: http });
}

/** The IPv6 half of dual-stack services: ip6tables rules, IPv6 traffic. */
const ipv6: FlowScenario = {
  name: 'dual-stack services, IPv6 family',
  family: 'IPv6',
  flags: { 'cluster-cidr': '10.244.0.0/16,fd00:10:244::/48' },
  services: () => [
    dual('web6', '172.30.0.60', 'fd00:172:30::60'),
    dual('np6', '172.30.0.61', 'fd00:172:30::61', { type: 'NodePort', ports: port80({ nodePort: 30160 }) }),
    dual('local6', '172.30.0.62', 'fd00:172:30::62', { type: 'NodePort', ports: port80({ nodePort: 30162 }), externalTrafficPolicy: 'Local' }),
    dual('empty6', '172.30.0.63', 'fd00:172:30::63'),
    dual('ext6', '172.30.0.64', 'fd00:172:30::64', { externalIPs: ['203.0.113.64', '2001:db8:203::64'] }),
  ],
  slices: () => [
    eps('web6', ['pod-a', 'pod-b', 'pod-c']),
    eps6('web6', ['pod-a', 'pod-b', 'pod-c']),
    eps6('np6', ['pod-a', 'pod-c']),
    eps6('local6', ['pod-b', 'pod-c']),
    eps6('ext6', ['pod-b']),
  ],
  flows: [
    { name: 'pod -> IPv6 ClusterIP, source kept', from: 'pod-a', to: 'fd00:172:30::64', port: 80, expect: ['pod-b'], masq: false },
    {
      name: 'outside -> IPv6 ClusterIP is masqueraded',
      from: 'client',
      to: 'fd00:172:30::60',
      port: 80,
      expect: ['pod-a', 'pod-b', 'pod-c'],
      masq: true,
    },
    { name: 'outside -> IPv6 NodePort', from: 'client', to: NODE1_6, port: 30160, expect: ['pod-a', 'pod-c'], masq: true },
    { name: 'eTP Local over IPv6 keeps the client address', from: 'client', to: NODE1_6, port: 30162, expect: ['pod-b'], masq: false },
    { name: 'node -> IPv6 ClusterIP is masqueraded', from: 'node', to: 'fd00:172:30::60', port: 80, expect: ['pod-a', 'pod-b', 'pod-c'], masq: true },
    { name: 'IPv6 externalIP from outside', from: 'client', to: '2001:db8:203::64', port: 80, expect: ['pod-b'], masq: true },
    { name: 'IPv6 service without endpoints is rejected', from: 'client', to: 'fd00:172:30::63', port: 80, expect: 'REJECT' },
  ],
};

export const SCENARIOS: readonly FlowScenario[] = [
  main,
  noDetector,
  masqueradeAll,
  masqueradeBit,
  nodePortAddresses,
  noLocalhostNodePorts,
  detectScenario('--detect-local-mode NodeCIDR', { 'detect-local-mode': 'NodeCIDR' }),
  detectScenario('--detect-local-mode BridgeInterface', { 'detect-local-mode': 'BridgeInterface', 'pod-bridge-interface': 'cbr0' }),
  detectScenario('--detect-local-mode InterfaceNamePrefix', { 'detect-local-mode': 'InterfaceNamePrefix', 'pod-interface-name-prefix': 'cbr' }),
  terminating,
  ipv6,
];

/** Flags every scenario starts from. */
export const BASE_FLAGS: Readonly<Record<string, string>> = { 'hostname-override': 'node-1', 'cluster-cidr': '10.244.0.0/16' };

export function podByIP(ip: string): PodName | undefined {
  return (Object.keys(PODS) as PodName[]).find((p) => PODS[p].ip === ip || PODS[p].ip6 === ip);
}
