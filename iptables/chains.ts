/**
 * Every chain kube-proxy (this one in either mode, and upstream's iptables
 * and userspace modes) creates, and every jump rule from the built-in chains
 * into them, as data; chainOwner(name) classifies any chain name found in a
 * live table. The renderers, the planner, the diff, the cleanup and the mode
 * switch all read these tables.
 *
 * Why each chain exists is explained in iptables/README.md.
 */

export const KUBE_SERVICES = 'KUBE-SERVICES';
export const KUBE_EXTERNAL_SERVICES = 'KUBE-EXTERNAL-SERVICES';
export const KUBE_NODEPORTS = 'KUBE-NODEPORTS';
export const KUBE_POSTROUTING = 'KUBE-POSTROUTING';
export const KUBE_MARK_MASQ = 'KUBE-MARK-MASQ';
export const KUBE_FORWARD = 'KUBE-FORWARD';
export const KUBE_PROXY_FIREWALL = 'KUBE-PROXY-FIREWALL';
/** kubelet's anti-martian chain; kube-proxy writes it too when localhost NodePorts are on. */
export const KUBE_FIREWALL = 'KUBE-FIREWALL';
export const KUBE_PROXY_CANARY = 'KUBE-PROXY-CANARY';

/** Userspace mode's portal chains (nat), upstream's names. */
export const KUBE_PORTALS_CONTAINER = 'KUBE-PORTALS-CONTAINER';
export const KUBE_PORTALS_HOST = 'KUBE-PORTALS-HOST';
export const KUBE_NODEPORT_CONTAINER = 'KUBE-NODEPORT-CONTAINER';
export const KUBE_NODEPORT_HOST = 'KUBE-NODEPORT-HOST';
/** Userspace mode's filter chain accepting proxy ports. */
export const KUBE_NODEPORT_NON_LOCAL = 'KUBE-NODEPORT-NON-LOCAL';

/**
 * Upstream's ipvs mode's own chains (pkg/proxy/ipvs iptablesCleanupChains; its KUBE-SERVICES, KUBE-POSTROUTING,
 * KUBE-MARK-MASQ, KUBE-FORWARD and KUBE-PROXY-FIREWALL share the iptables mode's names). kube-proxy-ts has no ipvs
 * mode: it only removes them (src/ipvs-leftovers.ts has the rest of what that mode leaves).
 */
export const KUBE_NODE_PORT = 'KUBE-NODE-PORT';
export const KUBE_LOAD_BALANCER = 'KUBE-LOAD-BALANCER';
export const KUBE_SOURCE_RANGES_FIREWALL = 'KUBE-SOURCE-RANGES-FIREWALL';
export const KUBE_IPVS_FILTER = 'KUBE-IPVS-FILTER';
export const KUBE_IPVS_OUT_FILTER = 'KUBE-IPVS-OUT-FILTER';

/** Per-service chain prefixes (chain-names.ts appends the hash). */
export const SVC_PREFIX = 'KUBE-SVC-';
export const SVL_PREFIX = 'KUBE-SVL-';
export const EXT_PREFIX = 'KUBE-EXT-';
export const FW_PREFIX = 'KUBE-FW-';
export const SEP_PREFIX = 'KUBE-SEP-';

/**
 * Who writes a chain: one of the two modes, upstream's ipvs mode (removed, never written), or kubelet (whose chains
 * kube-proxy may write but never removes).
 */
export type ChainOwner = 'iptables' | 'userspace' | 'ipvs' | 'kubelet';

export interface FixedChain {
  readonly name: string;
  readonly owner: ChainOwner;
  /** The tables the owner writes it in (the canary is created in each and never rendered). */
  readonly tables: readonly string[];
  /** nat: per-service chains jump to it, so a batched sync writes it before them (plan.ts). */
  readonly leaf?: boolean;
  /** Tables where only the set of its rules matters, not their order (upstream writes services in map order; diff.ts). */
  readonly orderFreeIn?: readonly string[];
}

/** The fixed chains, each table's in upstream's declaration order. */
export const FIXED_CHAINS: readonly FixedChain[] = [
  { name: KUBE_SERVICES, owner: 'iptables', tables: ['filter', 'nat'], orderFreeIn: ['nat'] },
  { name: KUBE_EXTERNAL_SERVICES, owner: 'iptables', tables: ['filter'] },
  { name: KUBE_FORWARD, owner: 'iptables', tables: ['filter'] },
  { name: KUBE_NODEPORTS, owner: 'iptables', tables: ['filter', 'nat'], orderFreeIn: ['nat'] },
  { name: KUBE_PROXY_FIREWALL, owner: 'iptables', tables: ['filter'] },
  { name: KUBE_POSTROUTING, owner: 'iptables', tables: ['nat'], leaf: true },
  { name: KUBE_MARK_MASQ, owner: 'iptables', tables: ['nat'], leaf: true },
  { name: KUBE_PROXY_CANARY, owner: 'iptables', tables: ['mangle', 'nat', 'filter'] },
  { name: KUBE_FIREWALL, owner: 'kubelet', tables: ['filter'] },
  { name: KUBE_PORTALS_CONTAINER, owner: 'userspace', tables: ['nat'] },
  { name: KUBE_PORTALS_HOST, owner: 'userspace', tables: ['nat'] },
  { name: KUBE_NODEPORT_CONTAINER, owner: 'userspace', tables: ['nat'] },
  { name: KUBE_NODEPORT_HOST, owner: 'userspace', tables: ['nat'] },
  { name: KUBE_NODEPORT_NON_LOCAL, owner: 'userspace', tables: ['filter'] },
  { name: KUBE_NODE_PORT, owner: 'ipvs', tables: ['nat', 'filter'] },
  { name: KUBE_LOAD_BALANCER, owner: 'ipvs', tables: ['nat'] },
  { name: KUBE_SOURCE_RANGES_FIREWALL, owner: 'ipvs', tables: ['filter'] },
  { name: KUBE_IPVS_FILTER, owner: 'ipvs', tables: ['filter'] },
  { name: KUBE_IPVS_OUT_FILTER, owner: 'ipvs', tables: ['filter'] },
];

export interface ServiceChainPrefix {
  readonly prefix: string;
  /** service: one per service port (EXT, FW, SVC, SVL share its hash); endpoint: one per endpoint (SEP). */
  readonly per: 'service' | 'endpoint';
  /** Written by older upstream releases only (pre-1.24 KUBE-XLB-): removed by --cleanup, never written or deleted as stale. */
  readonly legacy?: boolean;
}

/** Per-service chains, all the iptables mode's. */
export const SERVICE_CHAIN_PREFIXES: readonly ServiceChainPrefix[] = [
  { prefix: SVC_PREFIX, per: 'service' },
  { prefix: SVL_PREFIX, per: 'service' },
  { prefix: EXT_PREFIX, per: 'service' },
  { prefix: FW_PREFIX, per: 'service' },
  { prefix: SEP_PREFIX, per: 'endpoint' },
  { prefix: 'KUBE-XLB-', per: 'service', legacy: true },
];

const fixedByName = new Map(FIXED_CHAINS.map((c) => [c.name, c]));

export function fixedChain(name: string): FixedChain | undefined {
  return fixedByName.get(name);
}

/** Who wrote a chain found in a live table, or null for a chain that is not kube-proxy's (nor kubelet's KUBE-FIREWALL). */
export function chainOwner(name: string): ChainOwner | null {
  const fixed = fixedByName.get(name);
  if (fixed) return fixed.owner;
  return SERVICE_CHAIN_PREFIXES.some((p) => name.startsWith(p.prefix)) ? 'iptables' : null;
}

/** A per-service chain the iptables mode writes now (KUBE-SVC/SVL/EXT/FW/SEP): stale ones are deleted on full syncs. */
export function isServiceChain(name: string): boolean {
  return SERVICE_CHAIN_PREFIXES.some((p) => !p.legacy && name.startsWith(p.prefix));
}

/** The hash a service port's KUBE-EXT/FW/SVC/SVL chains share, or null (endpoint and other chains). */
export function serviceChainHash(name: string): string | null {
  const p = SERVICE_CHAIN_PREFIXES.find((x) => x.per === 'service' && !x.legacy && name.startsWith(x.prefix));
  return p ? name.slice(p.prefix.length) : null;
}

/** The fixed chains an owner writes in a table, in declaration order (the canary, written apart, excluded). */
export function fixedChainsOf(owner: ChainOwner, table: string): string[] {
  return FIXED_CHAINS.filter((c) => c.owner === owner && c.name !== KUBE_PROXY_CANARY && c.tables.includes(table)).map((c) => c.name);
}

export interface JumpRule {
  readonly table: 'filter' | 'nat';
  /** Built-in chain the jump sits in. */
  readonly from: string;
  /** kube-proxy chain it jumps to. */
  readonly to: string;
  /** Empty for kubelet's KUBE-FIREWALL jumps, which carry no comment. */
  readonly comment: string;
  /** Matches written before the comment. */
  readonly extraArgs: readonly string[];
}

const NEW = ['-m', 'conntrack', '--ctstate', 'NEW'] as const;

/**
 * Upstream's iptablesJumpChains, in its order. Upstream inserts each at
 * position 1 of its built-in chain in this order, so the last one listed for
 * a chain ends up first (the jump tables below are read the same way).
 */
export const JUMP_RULES: readonly JumpRule[] = [
  { table: 'filter', from: 'INPUT', to: KUBE_EXTERNAL_SERVICES, comment: 'kubernetes externally-visible service portals', extraArgs: NEW },
  { table: 'filter', from: 'FORWARD', to: KUBE_EXTERNAL_SERVICES, comment: 'kubernetes externally-visible service portals', extraArgs: NEW },
  { table: 'filter', from: 'INPUT', to: KUBE_NODEPORTS, comment: 'kubernetes health check service ports', extraArgs: [] },
  { table: 'filter', from: 'FORWARD', to: KUBE_SERVICES, comment: 'kubernetes service portals', extraArgs: NEW },
  { table: 'filter', from: 'OUTPUT', to: KUBE_SERVICES, comment: 'kubernetes service portals', extraArgs: NEW },
  { table: 'filter', from: 'FORWARD', to: KUBE_FORWARD, comment: 'kubernetes forwarding rules', extraArgs: [] },
  { table: 'filter', from: 'INPUT', to: KUBE_PROXY_FIREWALL, comment: 'kubernetes load balancer firewall', extraArgs: NEW },
  { table: 'filter', from: 'OUTPUT', to: KUBE_PROXY_FIREWALL, comment: 'kubernetes load balancer firewall', extraArgs: NEW },
  { table: 'filter', from: 'FORWARD', to: KUBE_PROXY_FIREWALL, comment: 'kubernetes load balancer firewall', extraArgs: NEW },
  { table: 'nat', from: 'OUTPUT', to: KUBE_SERVICES, comment: 'kubernetes service portals', extraArgs: [] },
  { table: 'nat', from: 'PREROUTING', to: KUBE_SERVICES, comment: 'kubernetes service portals', extraArgs: [] },
  { table: 'nat', from: 'POSTROUTING', to: KUBE_POSTROUTING, comment: 'kubernetes postrouting rules', extraArgs: [] },
];

/** kubelet's jumps to KUBE-FIREWALL, which kube-proxy ensures when it writes that chain (never removed by cleanup). */
export const KUBELET_JUMP_RULES: readonly JumpRule[] = [
  { table: 'filter', from: 'INPUT', to: KUBE_FIREWALL, comment: '', extraArgs: [] },
  { table: 'filter', from: 'OUTPUT', to: KUBE_FIREWALL, comment: '', extraArgs: [] },
];

const LOCAL = ['-m', 'addrtype', '--dst-type', 'LOCAL'] as const;

/**
 * Userspace mode's jumps (upstream's userspace iptablesInit): the portal jumps
 * come before the node-port ones in PREROUTING and OUTPUT, so they are listed
 * after them.
 */
export const USERSPACE_JUMP_RULES: readonly JumpRule[] = [
  { table: 'filter', from: 'INPUT', to: KUBE_NODEPORT_NON_LOCAL, comment: 'Ensure that non-local NodePort traffic can flow', extraArgs: [] },
  {
    table: 'nat',
    from: 'PREROUTING',
    to: KUBE_NODEPORT_CONTAINER,
    comment: 'handle service NodePorts; NOTE: this must be the last rule in the chain',
    extraArgs: LOCAL,
  },
  {
    table: 'nat',
    from: 'PREROUTING',
    to: KUBE_PORTALS_CONTAINER,
    comment: 'handle ClusterIPs; NOTE: this must be before the NodePort rules',
    extraArgs: [],
  },
  {
    table: 'nat',
    from: 'OUTPUT',
    to: KUBE_NODEPORT_HOST,
    comment: 'handle service NodePorts; NOTE: this must be the last rule in the chain',
    extraArgs: LOCAL,
  },
  { table: 'nat', from: 'OUTPUT', to: KUBE_PORTALS_HOST, comment: 'handle ClusterIPs; NOTE: this must be before the NodePort rules', extraArgs: [] },
];

/** The rule spec of a jump rule, as it appears after "-A CHAIN ". */
export function jumpRuleSpec(j: JumpRule): string {
  const parts = [...j.extraArgs];
  if (j.comment) parts.push('-m', 'comment', '--comment', `"${j.comment}"`);
  parts.push('-j', j.to);
  return parts.join(' ');
}
