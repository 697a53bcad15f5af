/**
 * Upstream's decision variables for one service port, computed once per
 * render: which chains it uses (EXT, FW, SVC, SVL), whether its internal and
 * external traffic has endpoints under its traffic policies, and the filter
 * verdict when not. They follow upstream's syncProxyRules one for one
 * (pkg/proxy/iptables/proxier.go: hasEndpoints, hasInternalEndpoints,
 * usesClusterPolicyChain, usesExternalTrafficChain, usesFWChain, ...);
 * render-service.ts turns them into rules.
 */
import type { Endpoint, ServicePort, ServicePortState } from '../proxier/types.ts';
import { externallyAccessible } from '../proxier/types.ts';
import { serviceChainNames, type ServiceChainNames } from './chain-names.ts';
import { commentMatch } from './comment.ts';

/** The filter-table verdict for traffic with no (local) endpoint; comment and target kept apart (object text may hold any character). */
export type NoEndpoints = { readonly comment: string; readonly target: 'REJECT' | 'DROP' } | null;

/** Upstream's decision variables for one service port. */
export interface Decisions {
  readonly sp: ServicePort;
  readonly names: ServiceChainNames;
  readonly clusterEndpoints: readonly Endpoint[];
  readonly localEndpoints: readonly Endpoint[];
  readonly hasEndpoints: boolean;
  readonly internalChain: string;
  readonly hasInternalEndpoints: boolean;
  readonly externalPolicyChain: string;
  readonly hasExternalEndpoints: boolean;
  readonly usesClusterPolicyChain: boolean;
  readonly usesLocalPolicyChain: boolean;
  readonly usesExternalChain: boolean;
  readonly usesFWChain: boolean;
  readonly internalFilter: NoEndpoints;
  readonly externalFilter: NoEndpoints;
  /** Comment and match of the cluster IP rule (also heads the internal chain's masquerade rule). */
  readonly clusterMatch: string;
}

export const vipMatch = (sp: ServicePort, ip: string, port: number): string => {
  const proto = sp.protocol.toLowerCase();
  return `-m ${proto} -p ${proto} -d ${ip} --dport ${port}`;
};

export function decide(state: ServicePortState): Decisions {
  const sp = state.service;
  const { cluster, local, hasAny: hasEndpoints } = state.selection;
  const clusterEndpoints = cluster ?? [];
  const localEndpoints = local ?? [];
  const names = serviceChainNames(sp);
  const S = sp.key;
  // With a Local policy, that traffic has endpoints only when some are local.
  const hasInternalEndpoints = hasEndpoints && !(sp.internalPolicyLocal && localEndpoints.length === 0);
  const hasExternalEndpoints = hasEndpoints && !(sp.externalPolicyLocal && localEndpoints.length === 0);
  let internalFilter: NoEndpoints = null;
  let externalFilter: NoEndpoints = null;
  if (!hasEndpoints) {
    internalFilter = externalFilter = { comment: commentMatch(`${S} has no endpoints`), target: 'REJECT' };
  } else {
    if (!hasInternalEndpoints) internalFilter = { comment: commentMatch(`${S} has no local endpoints`), target: 'DROP' };
    if (!hasExternalEndpoints) externalFilter = { comment: commentMatch(`${S} has no local endpoints`), target: 'DROP' };
  }
  return {
    sp,
    names,
    clusterEndpoints,
    localEndpoints,
    hasEndpoints,
    internalChain: sp.internalPolicyLocal ? names.svl : names.svc,
    hasInternalEndpoints,
    externalPolicyChain: sp.externalPolicyLocal ? names.svl : names.svc,
    hasExternalEndpoints,
    usesClusterPolicyChain: clusterEndpoints.length > 0 && cluster !== null,
    usesLocalPolicyChain: localEndpoints.length > 0 && local !== null,
    // The EXT chain is needed whenever there are endpoints at all: its
    // short-circuit rules for pod and node traffic apply even with no local ones.
    usesExternalChain: hasEndpoints && externallyAccessible(sp),
    usesFWChain: hasEndpoints && sp.loadBalancerVIPs.length > 0 && sp.loadBalancerSourceRanges.length > 0,
    internalFilter,
    externalFilter,
    clusterMatch: `${commentMatch(`${S} cluster IP`)} ${vipMatch(sp, sp.clusterIP, sp.port)}`,
  };
}
