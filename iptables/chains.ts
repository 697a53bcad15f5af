/**
 * The fixed skeleton of kube-proxy's iptables rules, as data: the top-level
 * chains and the jump rules from the built-in chains into them. The renderer,
 * the cleanup and the jump-rule check all read these tables.
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
export const USERSPACE_CHAINS = [KUBE_PORTALS_CONTAINER, KUBE_PORTALS_HOST, KUBE_NODEPORT_CONTAINER, KUBE_NODEPORT_HOST, KUBE_NODEPORT_NON_LOCAL] as const;
/** The iptables mode's own fixed chains (what starting userspace mode removes). */
export const IPTABLES_MODE_CHAINS = ['KUBE-SERVICES', 'KUBE-EXTERNAL-SERVICES', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING', 'KUBE-MARK-MASQ', 'KUBE-FORWARD', 'KUBE-PROXY-FIREWALL'] as const;

/**
 * Every fixed chain kube-proxy (this one, and upstream in iptables or
 * userspace mode) creates, in any table: what --cleanup removes. KUBE-FIREWALL
 * and KUBE-MARK-DROP are kubelet's and stay.
 */
export const OWNED_CHAINS: ReadonlySet<string> = new Set([...IPTABLES_MODE_CHAINS, KUBE_PROXY_CANARY, ...USERSPACE_CHAINS]);
/** Per-service chain prefixes, including the pre-1.24 KUBE-XLB- of older upstream releases. */
export const OWNED_PREFIXES = ['KUBE-SVC-', 'KUBE-SVL-', 'KUBE-EXT-', 'KUBE-FW-', 'KUBE-SEP-', 'KUBE-XLB-'] as const;

export function isOwnedChain(name: string): boolean {
  return OWNED_CHAINS.has(name) || OWNED_PREFIXES.some((p) => name.startsWith(p));
}

/** Filter chains written on every sync, in upstream's declaration order. */
export const FILTER_CHAINS = [KUBE_SERVICES, KUBE_EXTERNAL_SERVICES, KUBE_FORWARD, KUBE_NODEPORTS, KUBE_PROXY_FIREWALL] as const;
/** Nat chains written on every sync, in upstream's declaration order. */
export const NAT_CHAINS = [KUBE_SERVICES, KUBE_NODEPORTS, KUBE_POSTROUTING, KUBE_MARK_MASQ] as const;

export interface JumpRule {
  readonly table: 'filter' | 'nat';
  /** Built-in chain the jump sits in. */
  readonly from: string;
  /** kube-proxy chain it jumps to. */
  readonly to: string;
  /** Empty for kubelet's KUBE-FIREWALL jumps, which carry no comment. */
  readonly comment: string;
  readonly extraArgs: readonly string[];
}

const NEW = ['-m', 'conntrack', '--ctstate', 'NEW'] as const;

/**
 * Upstream's iptablesJumpChains, in its order. Upstream inserts each at
 * position 1 of its built-in chain in this order, so the last one listed for
 * a chain ends up first.
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

/** The rule spec of a jump rule, as it appears after "-A CHAIN ". */
export function jumpRuleSpec(j: JumpRule): string {
  const parts = [...j.extraArgs];
  if (j.comment) parts.push('-m', 'comment', '--comment', `"${j.comment}"`);
  parts.push('-j', j.to);
  return parts.join(' ');
}
