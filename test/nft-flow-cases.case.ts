/**
 * The packet-flow table (flow-cases.case.ts) for nftables mode: the same
 * scenarios and flows, with each difference upstream's nftables mode has by
 * design written down with its reason, plus scenarios for behaviour only
 * nftables mode has (upstream nftables proxier_test.go TestClusterIPGeneral
 * and TestNodePorts). nftFlowScenarios() refuses a difference that names no
 * flow, as upstream's override check does.
 */
import { makeEndpointSlice, makeService } from './builders.ts';
import { NODE1, NODE1_SECONDARY, PODS, SCENARIOS, TARGET_PORT, type FlowCase, type FlowScenario, type PodName } from './flow-cases.case.ts';

export interface NftDifference {
  readonly expect?: FlowCase['expect'];
  readonly masq?: boolean;
  /** Replaces the iptables case's kernel skip: a reason, or null to run it in the kernel after all. */
  readonly skipKernel?: string | null;
  readonly reason: string;
}

/** A flow case that may also be SCTP (traced; the kernel runner has no SCTP client). */
export type NftFlowCase = Omit<FlowCase, 'proto'> & { readonly proto?: 'TCP' | 'UDP' | 'SCTP' };

export interface NftScenario extends Omit<FlowScenario, 'flows'> {
  readonly flows: readonly NftFlowCase[];
  /** ServiceCIDRs (ServiceCIDR objects upstream): unallocated addresses in them are dropped. */
  readonly serviceCIDRs?: readonly string[];
}

const NO_SCTP_CLIENT =
  'the traffic client speaks TCP and UDP only (Node.js has no SCTP sockets, and this kernel has no SCTP: socket() fails with EPROTONOSUPPORT)';

const NO_LOCALHOST = 'nftables mode has no localhost NodePorts (upstream KEP-3866: it does not set route_localnet)';

/** Scenario name -> flow name -> how nftables mode differs, and why. */
export const NFT_DIFFERENCES: Readonly<Record<string, Readonly<Record<string, NftDifference>>>> = {
  'service shapes (cluster CIDR detection)': {
    'localhost -> NodePort': { expect: 'NONE', reason: NO_LOCALHOST },
    'wrong port of a service IP is not captured': {
      expect: 'REJECT',
      skipKernel: null,
      reason:
        'cluster-ips-check rejects traffic to ports of a ClusterIP that no service uses (upstream: "Reject traffic to invalid ports of ClusterIPs")',
    },
  },
};

const port80 = (over: Record<string, unknown> = {}) => [{ name: 'p80', port: 80, targetPort: TARGET_PORT, protocol: 'TCP', ...over }];
const eps = (svc: string, pods: readonly PodName[], ports: unknown[] = [{ name: 'p80', port: TARGET_PORT }]) =>
  makeEndpointSlice('ns1', svc, { endpoints: pods.map((p) => ({ ip: PODS[p].ip, nodeName: PODS[p].node })), ports });
const clusterServices = () => [
  makeService('ns1', 'cluster', { clusterIP: '172.30.0.10', ports: port80() }),
  makeService('ns1', 'sctp', { clusterIP: '172.30.0.12', ports: [{ name: 'sctp', port: 9999, targetPort: TARGET_PORT, protocol: 'SCTP' }] }),
  makeService('ns1', 'dns', { clusterIP: '172.30.0.11', ports: [{ name: 'dns', port: 53, targetPort: TARGET_PORT, protocol: 'UDP' }] }),
  makeService('ns1', 'nodeport', { type: 'NodePort', clusterIP: '172.30.0.13', ports: port80({ nodePort: 30080 }) }),
];
const clusterSlices = () => [
  eps('cluster', ['pod-b', 'pod-c']),
  eps('dns', ['pod-b', 'pod-c'], [{ name: 'dns', port: TARGET_PORT, protocol: 'UDP' }]),
  eps('sctp', ['pod-b', 'pod-c'], [{ name: 'sctp', port: TARGET_PORT, protocol: 'SCTP' }]),
  eps('nodeport', ['pod-b', 'pod-c']),
];

/** Behaviour only nftables mode has. */
export const NFT_ONLY: readonly NftScenario[] = [
  {
    name: 'nftables: unknown ports and unallocated ClusterIPs (upstream TestClusterIPGeneral)',
    serviceCIDRs: ['172.30.0.0/16', 'fd00:172:30::/112'],
    services: clusterServices,
    slices: clusterSlices,
    flows: [
      { name: 'pod -> ClusterIP still works', from: 'pod-a', to: '172.30.0.10', port: 80, expect: ['pod-b', 'pod-c'], masq: false },
      {
        name: 'SCTP pod -> ClusterIP',
        from: 'pod-a',
        proto: 'SCTP',
        to: '172.30.0.12',
        port: 9999,
        expect: ['pod-b', 'pod-c'],
        masq: false,
        skipKernel: NO_SCTP_CLIENT,
      },
      { name: 'TCP to an SCTP-only ClusterIP port: rejected', from: 'pod-a', to: '172.30.0.12', port: 9999, expect: 'REJECT' },
      { name: 'pod -> unallocated address of the ServiceCIDR: dropped', from: 'pod-a', to: '172.30.0.99', port: 80, expect: 'DROP' },
      { name: 'UDP to a TCP-only ClusterIP port: rejected', from: 'pod-a', proto: 'UDP', to: '172.30.0.10', port: 80, expect: 'REJECT' },
      { name: 'TCP to a UDP-only ClusterIP port: rejected', from: 'pod-a', to: '172.30.0.11', port: 53, expect: 'REJECT' },
      { name: 'outside -> unknown port of a ClusterIP: rejected', from: 'client', to: '172.30.0.10', port: 81, expect: 'REJECT' },
      { name: 'node -> unknown port of a ClusterIP: rejected', from: 'node', to: '172.30.0.10', port: 81, expect: 'REJECT' },
    ],
  },
  {
    name: 'nftables: NodePorts on the primary address only (upstream TestNodePorts, default)',
    services: clusterServices,
    slices: clusterSlices,
    flows: [
      { name: 'pod -> NodePort on the primary address', from: 'pod-a', to: NODE1, port: 30080, expect: ['pod-b', 'pod-c'], masq: true },
      { name: 'pod -> NodePort on a secondary address: not captured', from: 'pod-a', to: NODE1_SECONDARY, port: 30080, expect: 'NONE' },
    ],
  },
  {
    name: 'nftables: --nodeport-addresses 0.0.0.0/0 (upstream TestNodePorts, match-all)',
    flags: { 'nodeport-addresses': ['0.0.0.0/0'] },
    services: clusterServices,
    slices: clusterSlices,
    flows: [
      { name: 'pod -> NodePort on a secondary address', from: 'pod-a', to: NODE1_SECONDARY, port: 30080, expect: ['pod-b', 'pod-c'], masq: true },
      { name: 'outside -> NodePort on the primary address', from: 'client', to: NODE1, port: 30080, expect: ['pod-b', 'pod-c'], masq: true },
      { name: 'localhost -> NodePort: still not captured', from: 'localhost', to: '127.0.0.1', port: 30080, expect: 'NONE' },
    ],
  },
];

function withDifferences(s: FlowScenario): NftScenario {
  const diffs = NFT_DIFFERENCES[s.name] ?? {};
  for (const name of Object.keys(diffs)) {
    if (!s.flows.some((f) => f.name === name)) throw new Error(`NFT_DIFFERENCES names no flow "${name}" in scenario "${s.name}"`);
  }
  // route_localnet is what iptables mode's localhost NodePorts need; nftables mode never sets it.
  const { sysctls: _sysctls, ...rest } = s;
  return {
    ...rest,
    flows: s.flows.map((f): NftFlowCase => {
      const d = diffs[f.name];
      if (!d) return f;
      const { skipKernel: _skip, ...base } = f;
      const skip = d.skipKernel === undefined ? f.skipKernel : (d.skipKernel ?? undefined);
      return {
        ...base,
        ...(d.expect !== undefined ? { expect: d.expect } : {}),
        ...(d.masq !== undefined ? { masq: d.masq } : {}),
        ...(skip ? { skipKernel: skip } : {}),
      };
    }),
  };
}

export function nftFlowScenarios(): readonly NftScenario[] {
  for (const name of Object.keys(NFT_DIFFERENCES))
    if (!SCENARIOS.some((s) => s.name === name)) throw new Error(`NFT_DIFFERENCES names no scenario "${name}"`);
  return [...SCENARIOS.map(withDifferences), ...NFT_ONLY];
}
