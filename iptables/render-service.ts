/**
 * Everything one service port contributes to the ruleset, split by output:
 * its entries in the shared top-level chains (KUBE-SERVICES, KUBE-NODEPORTS,
 * the filter chains), its KUBE-EXT/FW chains (external destinations), and its
 * KUBE-SVC/SVL chains with their KUBE-SEP chains (endpoint choice). The
 * decision variables follow upstream's syncProxyRules one for one
 * (pkg/proxy/iptables/proxier.go); decide() (service-decisions.ts) computes
 * them once.
 *
 * The result depends only on the ServicePortState and the context, so the
 * caller can memoise it by object identity across syncs.
 */
import type { Endpoint, ServicePortState } from '../proxier/types.ts';
import { endpointChainNamer } from './chain-names.ts';
import { KUBE_MARK_MASQ } from './chains.ts';
import { commentMatch } from './comment.ts';
import type { LocalDetector } from './local-detector.ts';
import { endpointChain, serviceToEndpointRules } from './render-endpoints.ts';
import { decide, vipMatch, type Decisions, type NoEndpoints } from './service-decisions.ts';
import { LOCALHOST_NODEPORTS_ACCEPTED } from './nfacct.ts';
import { PackedChain } from './packed-chain.ts';
import type { Chain } from './ruleset.ts';

export interface ServiceRenderContext {
  readonly masqueradeAll: boolean;
  readonly detector: LocalDetector;
  /** This family's node IP, loopback without one (rangeCheckNodeIP): LB source ranges holding it admit the node itself. */
  readonly nodeIP: string;
  readonly largeClusterMode: boolean;
  /** cidrContains for the source-range check; injected to keep this file free of parsing. */
  readonly cidrContains: (cidr: string, ip: string) => boolean;
  /**
   * The localhost NodePort counter exists (IPv4, localhost NodePorts on): each NodePort gets an earlier rule for
   * 127.0.0.0/8 that counts into it (upstream's nfacct localhost_nps_accepted_pkts rule).
   */
  readonly countLocalhostNodePorts?: boolean;
}

/** The service port's rules in the shared top-level chains. */
export interface EntryRules {
  readonly natServices: readonly string[];
  readonly natNodePorts: readonly string[];
  readonly filterServices: readonly string[];
  readonly filterExternalServices: readonly string[];
  readonly filterNodePorts: readonly string[];
  readonly filterProxyFirewall: readonly string[];
}

export interface ServiceRender extends EntryRules {
  /** "ns/name:port/PROTOCOL": identifies the service port across syncs (built once, so map lookups reuse its hash). */
  readonly key: string;
  /** See flatten(). */
  readonly flattened: number;
  /** Per-service nat chains, in upstream's declaration order: EXT, FW, SVC, SVL, SEP... */
  readonly natChains: readonly Chain[];
  /** iTP Local with no local endpoints (metric kubeproxy_sync_proxy_rules_no_local_endpoints_total). */
  readonly noLocalInternal: boolean;
  /** eTP Local with no local endpoints. */
  readonly noLocalExternal: boolean;
}

/** KUBE-SERVICES / KUBE-NODEPORTS entries and the filter rules for traffic with no (local) endpoint. */
function entryRules(d: Decisions, ctx: ServiceRenderContext): EntryRules {
  const { sp, names } = d;
  const S = sp.key;
  const proto = sp.protocol.toLowerCase();
  const filterRule = (filter: NoEndpoints, match: string): string => `${filter!.comment} ${match} -j ${filter!.target}`;
  const vip = (ip: string): string => vipMatch(sp, ip, sp.port);
  const lbChain = d.usesFWChain ? names.fw : names.ext;
  const out = {
    natServices: [] as string[],
    natNodePorts: [] as string[],
    filterServices: [] as string[],
    filterExternalServices: [] as string[],
    filterNodePorts: [] as string[],
    filterProxyFirewall: [] as string[],
  };

  if (d.hasInternalEndpoints) out.natServices.push(`${d.clusterMatch} -j ${d.internalChain}`);
  else out.filterServices.push(filterRule(d.internalFilter, vip(sp.clusterIP)));
  for (const ip of sp.externalIPs) {
    if (d.hasEndpoints) out.natServices.push(`${commentMatch(`${S} external IP`)} ${vip(ip)} -j ${names.ext}`);
    if (!d.hasExternalEndpoints) out.filterExternalServices.push(filterRule(d.externalFilter, vip(ip)));
  }
  for (const ip of sp.loadBalancerVIPs) {
    if (d.hasEndpoints) out.natServices.push(`${commentMatch(`${S} loadbalancer IP`)} ${vip(ip)} -j ${lbChain}`);
    if (d.usesFWChain) out.filterProxyFirewall.push(`${commentMatch(`${S} traffic not accepted by ${names.fw}`)} ${vip(ip)} -j DROP`);
  }
  if (!d.hasExternalEndpoints) {
    for (const ip of sp.loadBalancerVIPs) out.filterExternalServices.push(filterRule(d.externalFilter, vip(ip)));
  }
  // Node port: not subject to loadBalancerSourceRanges (upstream limitation, kept).
  if (sp.nodePort !== 0) {
    if (d.hasEndpoints && ctx.countLocalhostNodePorts) {
      out.natNodePorts.push(
        `${commentMatch(S)} -m ${proto} -p ${proto} -d 127.0.0.0/8 --dport ${sp.nodePort} -m nfacct --nfacct-name ${LOCALHOST_NODEPORTS_ACCEPTED} -j ${names.ext}`,
      );
    }
    if (d.hasEndpoints) out.natNodePorts.push(`${commentMatch(S)} -m ${proto} -p ${proto} --dport ${sp.nodePort} -j ${names.ext}`);
    if (!d.hasExternalEndpoints) {
      out.filterExternalServices.push(filterRule(d.externalFilter, `-m addrtype --dst-type LOCAL -m ${proto} -p ${proto} --dport ${sp.nodePort}`));
    }
  }
  // Health check node port: accepted whatever the endpoint state.
  if (sp.healthCheckNodePort !== 0) {
    out.filterNodePorts.push(`${commentMatch(`${S} health check node port`)} -m tcp -p tcp --dport ${sp.healthCheckNodePort} -j ACCEPT`);
  }
  return {
    natServices: fit(out.natServices),
    natNodePorts: fit(out.natNodePorts),
    filterServices: fit(out.filterServices),
    filterExternalServices: fit(out.filterExternalServices),
    filterNodePorts: fit(out.filterNodePorts),
    filterProxyFirewall: fit(out.filterProxyFirewall),
  };
}

const NONE: readonly never[] = Object.freeze([]);
/**
 * A kept list at its size: one shared empty list, or a copy without the spare
 * room that pushing left (an array pushed to once holds 17 slots).
 */
function fit<T>(list: readonly T[]): readonly T[] {
  return list.length === 0 ? NONE : list.slice();
}

/** KUBE-EXT (external destinations: masquerade or preserve the source) and KUBE-FW (loadBalancerSourceRanges). */
function externalChains(d: Decisions, ctx: ServiceRenderContext): Chain[] {
  const { sp, names } = d;
  const S = sp.key;
  const chains: Chain[] = [];
  if (d.usesExternalChain) {
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
    if (d.hasExternalEndpoints) rules.push(`-j ${d.externalPolicyChain}`);
    chains.push({ name: names.ext, policy: null, rules });
  }
  if (d.usesFWChain) {
    const head = commentMatch(`${S} loadbalancer IP`);
    const rules: string[] = [];
    let allowFromNode = false;
    for (const cidr of sp.loadBalancerSourceRanges) {
      rules.push(`${head} -s ${cidr} -j ${names.ext}`);
      if (ctx.cidrContains(cidr, ctx.nodeIP)) allowFromNode = true;
    }
    // VIP-style load balancers loop node -> VIP traffic back with source = VIP.
    if (allowFromNode) for (const ip of sp.loadBalancerVIPs) rules.push(`${head} -s ${ip} -j ${names.ext}`);
    // Falling off this chain leaves the packet un-DNATed: KUBE-PROXY-FIREWALL drops it.
    rules.push(commentMatch(`other traffic to ${S} will be dropped by KUBE-PROXY-FIREWALL`));
    chains.push({ name: names.fw, policy: null, rules });
  }
  return chains;
}

/** KUBE-SVC / KUBE-SVL (the probability ladder, masquerade first in the internal one) and a KUBE-SEP per reachable endpoint. */
function endpointChains(d: Decisions, state: ServicePortState, ctx: ServiceRenderContext, sepName = endpointChainNamer(d.sp)): Chain[] {
  const { sp, names } = d;
  // Masquerade rule at the top of the internal chain (it is written before the endpoint jumps).
  const internalMasq: string[] = [];
  if (d.hasInternalEndpoints) {
    if (ctx.masqueradeAll) internalMasq.push(`${d.clusterMatch} -j ${KUBE_MARK_MASQ}`);
    else if (ctx.detector.ifNotLocal) internalMasq.push(`${d.clusterMatch} ${ctx.detector.ifNotLocal.join(' ')} -j ${KUBE_MARK_MASQ}`);
  }
  const epCtx = { largeClusterMode: ctx.largeClusterMode, sepName };
  const policyChain = (name: string, endpoints: readonly Endpoint[]): Chain => ({
    name,
    policy: null,
    rules: [...(name === d.internalChain ? internalMasq : []), ...serviceToEndpointRules(sp, endpoints, epCtx)],
  });
  const chains: Chain[] = [];
  if (d.usesClusterPolicyChain) chains.push(policyChain(names.svc, d.clusterEndpoints));
  if (d.usesLocalPolicyChain) chains.push(policyChain(names.svl, d.localEndpoints));
  for (const ep of state.selection.allReachable) chains.push(endpointChain(sp, ep, epCtx));
  return chains;
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
  const d = decide(state);
  const entries = entryRules(d, ctx);
  // Kept by the render cache until the service changes: each chain's rules as one text.
  const natChains = externalChains(d, ctx)
    .concat(endpointChains(d, state, ctx))
    .map((c) => new PackedChain(c.name, c.rules));
  const { natServices, natNodePorts, filterServices, filterExternalServices, filterNodePorts, filterProxyFirewall } = entries;
  const flattened = flatten([natServices, natNodePorts, filterServices, filterExternalServices, filterNodePorts, filterProxyFirewall]);
  return {
    key: [d.sp.key, '/', d.sp.protocol].join(''),
    flattened,
    // Listed, not spread: fields after a spread live in a separate property array.
    natServices,
    natNodePorts,
    filterServices,
    filterExternalServices,
    filterNodePorts,
    filterProxyFirewall,
    natChains,
    noLocalInternal: d.hasEndpoints && !d.hasInternalEndpoints,
    noLocalExternal: d.hasEndpoints && !d.hasExternalEndpoints,
  };
}

/** A service port's share of the top-level chains and its nat chains' names; the chains themselves are built on demand. */
export interface ServiceOutline extends EntryRules {
  /** renderService's natChains, by name, in the same order. */
  readonly chainNames: readonly string[];
  /** renderService's natChains, built anew on each call (render writes them and lets them go). */
  readonly chains: () => Chain[];
  readonly noLocalInternal: boolean;
  readonly noLocalExternal: boolean;
}

/**
 * renderService without building the nat chains' rules: `render` writes the
 * table's header and chain declarations from outlines and builds each service's
 * chains only when their rules are written, so the text starts sooner and the
 * rules are garbage as soon as they are out.
 */
export function outlineService(state: ServicePortState, ctx: ServiceRenderContext): ServiceOutline {
  const d = decide(state);
  const sepName = endpointChainNamer(d.sp);
  const chainNames: string[] = [];
  if (d.usesExternalChain) chainNames.push(d.names.ext);
  if (d.usesFWChain) chainNames.push(d.names.fw);
  if (d.usesClusterPolicyChain) chainNames.push(d.names.svc);
  if (d.usesLocalPolicyChain) chainNames.push(d.names.svl);
  for (const ep of state.selection.allReachable) chainNames.push(sepName(ep));
  return {
    ...entryRules(d, ctx),
    chainNames,
    chains: () => [...externalChains(d, ctx), ...endpointChains(d, state, ctx, sepName)],
    noLocalInternal: d.hasEndpoints && !d.hasInternalEndpoints,
    noLocalExternal: d.hasEndpoints && !d.hasExternalEndpoints,
  };
}
