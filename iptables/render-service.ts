/**
 * Everything one service port contributes to the ruleset: its entries in the
 * shared top-level chains (KUBE-SERVICES, KUBE-NODEPORTS, the filter chains)
 * and its own KUBE-EXT/FW/SVC/SVL/SEP chains. The decision variables follow
 * upstream's syncProxyRules one for one (see reference §2.4).
 *
 * The result depends only on the ServicePortState and the context, so the
 * caller can memoise it by object identity across syncs.
 */
import type { ServicePortState } from '../proxier/types.ts';
import { externallyAccessible } from '../proxier/types.ts';
import { serviceChainNames } from './chain-names.ts';
import { KUBE_MARK_MASQ } from './chains.ts';
import type { LocalDetector } from './local-detector.ts';
import { commentMatch } from './comment.ts';
import { endpointChain, serviceToEndpointRules } from './render-endpoints.ts';
import type { Chain } from './ruleset.ts';

export interface ServiceRenderContext {
  readonly masqueradeAll: boolean;
  readonly detector: LocalDetector;
  /** This family's primary node IP (decides whether LB source ranges admit the node itself). */
  readonly nodeIP: string | null;
  readonly largeClusterMode: boolean;
  /** cidrContains for the source-range check; injected to keep this file free of parsing. */
  readonly cidrContains: (cidr: string, ip: string) => boolean;
}

export interface ServiceRender {
  /** "ns/name:port/PROTOCOL": identifies the service port across syncs (built once, so map lookups reuse its hash). */
  readonly key: string;
  /** See flatten(). */
  readonly flattened: number;
  readonly natServices: readonly string[];
  readonly natNodePorts: readonly string[];
  readonly filterServices: readonly string[];
  readonly filterExternalServices: readonly string[];
  readonly filterNodePorts: readonly string[];
  readonly filterProxyFirewall: readonly string[];
  /** Per-service nat chains, in upstream's declaration order: EXT, FW, SVC, SVL, SEP... */
  readonly natChains: readonly Chain[];
  /** iTP Local with no local endpoints (metric kubeproxy_sync_proxy_rules_no_local_endpoints_total). */
  readonly noLocalInternal: boolean;
  /** eTP Local with no local endpoints. */
  readonly noLocalExternal: boolean;
}

/**
 * Rules are built by concatenation, which V8 keeps as trees of cons strings
 * (several times the text's size). Reading one character of each makes V8
 * flatten it in place: at 10,000 services the renders shrink from ~63 MB to
 * ~16 MB. The sum is returned (and kept) so the reads cannot be optimised away.
 */
function flatten(lists: readonly (readonly string[])[]): number {
  let sum = 0;
  for (const list of lists) for (const s of list) sum += s.charCodeAt(0);
  return sum;
}

export function renderService(state: ServicePortState, ctx: ServiceRenderContext): ServiceRender {
  const sp = state.service;
  const { cluster, local, allReachable, hasAny: hasEndpoints } = state.selection;
  const clusterEndpoints = cluster ?? [];
  const localEndpoints = local ?? [];
  const names = serviceChainNames(sp);
  const proto = sp.protocol.toLowerCase();
  const S = sp.key;
  const accessible = externallyAccessible(sp);

  const usesClusterPolicyChain = clusterEndpoints.length > 0 && cluster !== null;
  const usesLocalPolicyChain = localEndpoints.length > 0 && local !== null;

  let internalChain = names.svc;
  let hasInternalEndpoints = hasEndpoints;
  if (sp.internalPolicyLocal) {
    internalChain = names.svl;
    if (localEndpoints.length === 0) hasInternalEndpoints = false;
  }
  let externalPolicyChain = names.svc;
  let hasExternalEndpoints = hasEndpoints;
  if (sp.externalPolicyLocal) {
    externalPolicyChain = names.svl;
    if (localEndpoints.length === 0) hasExternalEndpoints = false;
  }
  // The EXT chain is needed whenever there are endpoints at all: its
  // short-circuit rules for pod and node traffic apply even with no local ones.
  const usesExternalChain = hasEndpoints && accessible;
  const usesFWChain = hasEndpoints && sp.loadBalancerVIPs.length > 0 && sp.loadBalancerSourceRanges.length > 0;
  const lbChain = usesFWChain ? names.fw : names.ext;

  // The filter-table verdict for traffic with no (local) endpoint: comment and target kept apart
  // (object text may hold any character, so it is never spliced and split again).
  type NoEndpoints = { readonly comment: string; readonly target: 'REJECT' | 'DROP' } | null;
  let internalFilter: NoEndpoints = null;
  let externalFilter: NoEndpoints = null;
  if (!hasEndpoints) {
    internalFilter = externalFilter = { comment: commentMatch(`${S} has no endpoints`), target: 'REJECT' };
  } else {
    if (!hasInternalEndpoints) internalFilter = { comment: commentMatch(`${S} has no local endpoints`), target: 'DROP' };
    if (!hasExternalEndpoints) externalFilter = { comment: commentMatch(`${S} has no local endpoints`), target: 'DROP' };
  }
  const filterRule = (filter: NoEndpoints, match: string): string => `${filter!.comment} ${match} -j ${filter!.target}`;

  const natServices: string[] = [];
  const natNodePorts: string[] = [];
  const filterServices: string[] = [];
  const filterExternalServices: string[] = [];
  const filterNodePorts: string[] = [];
  const filterProxyFirewall: string[] = [];
  const vip = (ip: string, port: number): string => `-m ${proto} -p ${proto} -d ${ip} --dport ${port}`;

  // ClusterIP.
  const clusterMatch = `${commentMatch(`${S} cluster IP`)} ${vip(sp.clusterIP, sp.port)}`;
  if (hasInternalEndpoints) natServices.push(`${clusterMatch} -j ${internalChain}`);
  else filterServices.push(filterRule(internalFilter, vip(sp.clusterIP, sp.port)));

  // External IPs.
  for (const ip of sp.externalIPs) {
    if (hasEndpoints) natServices.push(`${commentMatch(`${S} external IP`)} ${vip(ip, sp.port)} -j ${names.ext}`);
    if (!hasExternalEndpoints) filterExternalServices.push(filterRule(externalFilter, vip(ip, sp.port)));
  }

  // Load-balancer VIPs.
  for (const ip of sp.loadBalancerVIPs) {
    if (hasEndpoints) natServices.push(`${commentMatch(`${S} loadbalancer IP`)} ${vip(ip, sp.port)} -j ${lbChain}`);
    if (usesFWChain) {
      filterProxyFirewall.push(
        `${commentMatch(`${S} traffic not accepted by ${names.fw}`)} ${vip(ip, sp.port)} -j DROP`,
      );
    }
  }
  if (!hasExternalEndpoints) {
    for (const ip of sp.loadBalancerVIPs) filterExternalServices.push(filterRule(externalFilter, vip(ip, sp.port)));
  }

  // Node port: not subject to loadBalancerSourceRanges (upstream limitation, kept).
  if (sp.nodePort !== 0) {
    if (hasEndpoints) natNodePorts.push(`${commentMatch(S)} -m ${proto} -p ${proto} --dport ${sp.nodePort} -j ${names.ext}`);
    if (!hasExternalEndpoints) {
      filterExternalServices.push(
        filterRule(externalFilter, `-m addrtype --dst-type LOCAL -m ${proto} -p ${proto} --dport ${sp.nodePort}`),
      );
    }
  }

  // Health check node port: accepted whatever the endpoint state.
  if (sp.healthCheckNodePort !== 0) {
    filterNodePorts.push(
      `${commentMatch(`${S} health check node port`)} -m tcp -p tcp --dport ${sp.healthCheckNodePort} -j ACCEPT`,
    );
  }

  const natChains: Chain[] = [];
  // Masquerade rule at the top of the internal chain (it is written before the endpoint jumps).
  const internalMasq: string[] = [];
  if (hasInternalEndpoints) {
    if (ctx.masqueradeAll) internalMasq.push(`${clusterMatch} -j ${KUBE_MARK_MASQ}`);
    else if (ctx.detector.ifNotLocal) internalMasq.push(`${clusterMatch} ${ctx.detector.ifNotLocal.join(' ')} -j ${KUBE_MARK_MASQ}`);
  }

  if (usesExternalChain) {
    const rules: string[] = [];
    if (!sp.externalPolicyLocal) {
      rules.push(`${commentMatch(`masquerade traffic for ${S} external destinations`)} -j ${KUBE_MARK_MASQ}`);
    } else {
      if (ctx.detector.ifLocal) {
        // Pod -> external destination is subject to neither policy: it
        // simulates going out to the load balancer and coming back in.
        rules.push(`${commentMatch(`pod traffic for ${S} external destinations`)} ${ctx.detector.ifLocal.join(' ')} -j ${names.svc}`);
      }
      // Traffic from the node itself has a local source address: masquerade it and send it anywhere.
      rules.push(`${commentMatch(`masquerade LOCAL traffic for ${S} external destinations`)} -m addrtype --src-type LOCAL -j ${KUBE_MARK_MASQ}`);
      rules.push(`${commentMatch(`route LOCAL traffic for ${S} external destinations`)} -m addrtype --src-type LOCAL -j ${names.svc}`);
    }
    if (hasExternalEndpoints) rules.push(`-j ${externalPolicyChain}`);
    natChains.push({ name: names.ext, policy: null, rules });
  }

  if (usesFWChain) {
    const head = `${commentMatch(`${S} loadbalancer IP`)}`;
    const rules: string[] = [];
    let allowFromNode = false;
    for (const cidr of sp.loadBalancerSourceRanges) {
      rules.push(`${head} -s ${cidr} -j ${names.ext}`);
      if (ctx.nodeIP !== null && ctx.cidrContains(cidr, ctx.nodeIP)) allowFromNode = true;
    }
    // VIP-style load balancers loop node -> VIP traffic back with source = VIP.
    if (allowFromNode) for (const ip of sp.loadBalancerVIPs) rules.push(`${head} -s ${ip} -j ${names.ext}`);
    // Falling off this chain leaves the packet un-DNATed: KUBE-PROXY-FIREWALL drops it.
    rules.push(`${commentMatch(`other traffic to ${S} will be dropped by KUBE-PROXY-FIREWALL`)}`);
    natChains.push({ name: names.fw, policy: null, rules });
  }

  const epCtx = { largeClusterMode: ctx.largeClusterMode };
  const policyChain = (name: string, endpoints: typeof clusterEndpoints): Chain => ({
    name,
    policy: null,
    rules: [...(name === internalChain ? internalMasq : []), ...serviceToEndpointRules(sp, endpoints, epCtx)],
  });
  if (usesClusterPolicyChain) natChains.push(policyChain(names.svc, clusterEndpoints));
  if (usesLocalPolicyChain) natChains.push(policyChain(names.svl, localEndpoints));
  for (const ep of allReachable) natChains.push(endpointChain(sp, ep, epCtx));

  const flattened = flatten([natServices, natNodePorts, filterServices, filterExternalServices, filterNodePorts, filterProxyFirewall, ...natChains.map((c) => c.rules)]);
  return {
    key: `${sp.key}/${sp.protocol}`,
    flattened,
    natServices,
    natNodePorts,
    filterServices,
    filterExternalServices,
    filterNodePorts,
    filterProxyFirewall,
    natChains,
    noLocalInternal: hasEndpoints && !hasInternalEndpoints,
    noLocalExternal: hasEndpoints && !hasExternalEndpoints,
  };
}
