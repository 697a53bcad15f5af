/**
 * Every object kube-proxy owns in its table, as data: the base chains with
 * hook and priority, the jumps from them, the fixed regular chains and the
 * sets and maps (upstream generation A: nftablesBaseChains,
 * nftablesJumpChains and setupNFTables in pkg/proxy/nftables/proxier.go).
 * The renderer, the transaction writer, the tracer and the README read this
 * one table; chainOwner() classifies any chain name found in a live table.
 */
import { isServiceChainName } from './names.ts';
import { addrType, type BaseChainSpec, type NftFamily } from './model.ts';

export const FILTER_PREROUTING_PRE_DNAT = 'filter-prerouting-pre-dnat';
export const FILTER_OUTPUT_PRE_DNAT = 'filter-output-pre-dnat';
export const FILTER_INPUT = 'filter-input';
export const FILTER_FORWARD = 'filter-forward';
export const FILTER_OUTPUT = 'filter-output';
export const NAT_PREROUTING = 'nat-prerouting';
export const NAT_OUTPUT = 'nat-output';
export const NAT_POSTROUTING = 'nat-postrouting';

export const SERVICES = 'services';
export const MASQUERADING = 'masquerading';
export const MARK_FOR_MASQUERADE = 'mark-for-masquerade';
export const SERVICE_ENDPOINTS_CHECK = 'service-endpoints-check';
export const NODEPORT_ENDPOINTS_CHECK = 'nodeport-endpoints-check';
export const FIREWALL_CHECK = 'firewall-check';
export const CLUSTER_IPS_CHECK = 'cluster-ips-check';
export const REJECT_CHAIN = 'reject-chain';

export const CLUSTER_IPS = 'cluster-ips';
export const NODEPORT_IPS = 'nodeport-ips';
export const SERVICE_IPS = 'service-ips';
export const SERVICE_NODEPORTS = 'service-nodeports';
export const NO_ENDPOINT_SERVICES = 'no-endpoint-services';
export const NO_ENDPOINT_NODEPORTS = 'no-endpoint-nodeports';
export const FIREWALL_IPS = 'firewall-ips';
/** Generation B (v1.36+) only: local endpoints' own connections (endpoint . endpoint . proto . port), masqueraded. */
export const HAIRPIN_CONNECTIONS = 'hairpin-connections';

/**
 * Which upstream ruleset shape to write. A (v1.33-1.35, upstream proxier.go @ 531be812): an endpoint chain per
 * endpoint, `jump mark-for-masquerade`. B (v1.36+, after kubernetes#135800 and #136499; AustinAbro321/kubernetes
 * proxier.go @ 129058fc): the policy chain DNATs through a `numgen ... map`, endpoint chains only with session
 * affinity, the mark set inline, hairpin traffic masqueraded through @hairpin-connections.
 */
export type NftGeneration = 'A' | 'B';

/** What the mode writes: upstream's current shape, B (v1.36+). A stays for tests against upstream's A-era dumps and for benches. */
export const DEFAULT_GENERATION: NftGeneration = 'B';

export interface BaseChainRow extends BaseChainSpec {
  readonly name: string;
}

/**
 * Pre-DNAT filter chains see the original destination (source ranges);
 * reject is only allowed from input/forward/output before kernel 5.9, so the
 * no-endpoint checks hang off those; the bad-port check must run after DNAT.
 */
export const BASE_CHAINS: readonly BaseChainRow[] = [
  { name: FILTER_PREROUTING_PRE_DNAT, type: 'filter', hook: 'prerouting', priority: -110 },
  { name: FILTER_OUTPUT_PRE_DNAT, type: 'filter', hook: 'output', priority: -110 },
  { name: FILTER_INPUT, type: 'filter', hook: 'input', priority: 0 },
  { name: FILTER_FORWARD, type: 'filter', hook: 'forward', priority: 0 },
  { name: FILTER_OUTPUT, type: 'filter', hook: 'output', priority: 0 },
  { name: NAT_PREROUTING, type: 'nat', hook: 'prerouting', priority: -100 },
  { name: NAT_OUTPUT, type: 'nat', hook: 'output', priority: -100 },
  { name: NAT_POSTROUTING, type: 'nat', hook: 'postrouting', priority: 100 },
];

export interface JumpRow {
  readonly from: string;
  readonly to: string;
  /** Match written before "jump", or "". */
  readonly match: string;
}

/** In upstream's order, which is the order of the rules in each base chain. */
export const JUMPS: readonly JumpRow[] = [
  { from: FILTER_INPUT, to: NODEPORT_ENDPOINTS_CHECK, match: 'ct state new' },
  { from: FILTER_INPUT, to: SERVICE_ENDPOINTS_CHECK, match: 'ct state new' },
  { from: FILTER_FORWARD, to: SERVICE_ENDPOINTS_CHECK, match: 'ct state new' },
  { from: FILTER_OUTPUT, to: SERVICE_ENDPOINTS_CHECK, match: 'ct state new' },
  { from: FILTER_PREROUTING_PRE_DNAT, to: FIREWALL_CHECK, match: 'ct state new' },
  { from: FILTER_OUTPUT_PRE_DNAT, to: FIREWALL_CHECK, match: 'ct state new' },
  { from: NAT_OUTPUT, to: SERVICES, match: '' },
  { from: NAT_PREROUTING, to: SERVICES, match: '' },
  { from: NAT_POSTROUTING, to: MASQUERADING, match: '' },
  { from: FILTER_FORWARD, to: CLUSTER_IPS_CHECK, match: 'ct state new' },
  { from: FILTER_OUTPUT, to: CLUSTER_IPS_CHECK, match: 'ct state new' },
];

/** Regular chains that exist whatever the services, in the order setupNFTables creates them. */
export const FIXED_CHAINS: readonly string[] = [
  NODEPORT_ENDPOINTS_CHECK,
  SERVICE_ENDPOINTS_CHECK,
  FIREWALL_CHECK,
  SERVICES,
  MASQUERADING,
  CLUSTER_IPS_CHECK,
  MARK_FOR_MASQUERADE,
  REJECT_CHAIN,
];

/** Generation B's fixed chains: no mark-for-masquerade (upstream B's setupNFTables). */
export const FIXED_CHAINS_B: readonly string[] = FIXED_CHAINS.filter((c) => c !== MARK_FOR_MASQUERADE);

export const REJECT_CHAIN_COMMENT = 'helper for @no-endpoint-services / @no-endpoint-nodeports';

export interface ContainerRow {
  readonly name: string;
  readonly kind: 'set' | 'map';
  /** "ADDR" stands for the family's address type. */
  readonly type: string;
  readonly comment: string;
}

/** The fixed sets and maps, in setupNFTables order. */
export const CONTAINERS: readonly ContainerRow[] = [
  { name: CLUSTER_IPS, kind: 'set', type: 'ADDR', comment: 'Active ClusterIPs' },
  { name: NODEPORT_IPS, kind: 'set', type: 'ADDR', comment: 'IPs that accept NodePort traffic' },
  {
    name: NO_ENDPOINT_SERVICES,
    kind: 'map',
    type: 'ADDR . inet_proto . inet_service : verdict',
    comment: 'vmap to drop or reject packets to services with no endpoints',
  },
  {
    name: NO_ENDPOINT_NODEPORTS,
    kind: 'map',
    type: 'inet_proto . inet_service : verdict',
    comment: 'vmap to drop or reject packets to service nodeports with no endpoints',
  },
  {
    name: FIREWALL_IPS,
    kind: 'map',
    type: 'ADDR . inet_proto . inet_service : verdict',
    comment: 'destinations that are subject to LoadBalancerSourceRanges',
  },
  {
    name: SERVICE_IPS,
    kind: 'map',
    type: 'ADDR . inet_proto . inet_service : verdict',
    comment: 'ClusterIP, ExternalIP and LoadBalancer IP traffic',
  },
  { name: SERVICE_NODEPORTS, kind: 'map', type: 'inet_proto . inet_service : verdict', comment: 'NodePort traffic' },
];

/** Generation B's extra set, declared before the others as upstream B's setupNFTables does. */
export const HAIRPIN_CONTAINER: ContainerRow = {
  name: HAIRPIN_CONNECTIONS,
  kind: 'set',
  type: 'ADDR . ADDR . inet_proto . inet_service',
  comment: 'service hairpin connections',
};

/** The containers whose elements the services fill (upstream's six nftElementStorage stores). */
export const SERVICE_CONTAINERS: readonly string[] = [
  CLUSTER_IPS,
  SERVICE_IPS,
  FIREWALL_IPS,
  NO_ENDPOINT_SERVICES,
  NO_ENDPOINT_NODEPORTS,
  SERVICE_NODEPORTS,
];

export function containerType(row: ContainerRow, family: NftFamily): string {
  return row.type.replaceAll('ADDR', addrType(family));
}

/** The fixed regular chains of a generation. */
export const fixedChainsOf = (generation: NftGeneration): readonly string[] => (generation === 'B' ? FIXED_CHAINS_B : FIXED_CHAINS);

/** `retired`: a fixed chain of another generation only (mark-for-masquerade under B), left by a table it wrote. */
export type ChainOwner = 'base' | 'fixed' | 'retired' | 'service' | 'foreign';

/**
 * Who a chain of the kube-proxy table belongs to under `generation` (DEFAULT_GENERATION, B, when absent): a base chain, one of its fixed
 * chains, a fixed chain only another generation has, a service port, or nobody we know. A full sync flushes the
 * chains of the last three it finds unwanted and deletes them with the stale chains (upstream B keeps
 * mark-for-masquerade, which only `/` names make stale, in a table A wrote: unreferenced, forever).
 */
export function chainOwner(name: string, generation: NftGeneration = DEFAULT_GENERATION): ChainOwner {
  if (BASE_CHAINS.some((b) => b.name === name)) return 'base';
  if (fixedChainsOf(generation).includes(name)) return 'fixed';
  if (FIXED_CHAINS.includes(name) || FIXED_CHAINS_B.includes(name)) return 'retired';
  if (isServiceChainName(name)) return 'service';
  return 'foreign';
}
