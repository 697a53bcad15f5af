/**
 * One service port -> its chains (service-/local-/external-/firewall-/endpoint-),
 * its affinity sets and its elements in the shared sets and maps, following
 * the per-service loop of upstream's syncProxyRules (generation A or B). Which
 * endpoints each policy uses comes from the snapshot's selection (proxier's
 * CategorizeEndpoints), as in the iptables renderer. Pure.
 */
import type { ServicePortState } from '../proxier/types.ts';
import { externallyAccessible } from '../proxier/types.ts';
import { usesClusterEndpoints, usesLocalEndpoints } from '../proxier/topology.ts';
import type { NftLocalDetector } from './local-detector.ts';
import { addrType, nftComment, type NftChain, type NftElement, type NftFamily, type NftSet } from './model.ts';
import { endpointNames, servicePortNames } from './names.ts';
import { PackedChain } from './packed-chain.ts';
import {
  CLUSTER_IPS,
  FIREWALL_IPS,
  HAIRPIN_CONNECTIONS,
  MARK_FOR_MASQUERADE,
  NO_ENDPOINT_NODEPORTS,
  NO_ENDPOINT_SERVICES,
  REJECT_CHAIN,
  SERVICE_IPS,
  SERVICE_NODEPORTS,
  type NftGeneration,
} from './objects.ts';
import { dnatMapRule, endpointRules, policyChainRules } from './render-endpoints.ts';

export interface ServiceContext {
  readonly family: NftFamily;
  readonly masqueradeAll: boolean;
  readonly detector: NftLocalDetector;
  /** The node's IP of this family, loopback without one (rangeCheckNodeIP): source ranges containing it also admit the LB VIPs. */
  readonly nodeIP: string;
  readonly cidrContains: (cidr: string, ip: string) => boolean;
  /** --traffic-counters: each endpoint chain's DNAT rule counts into a named counter of the chain's name. */
  readonly counters?: boolean;
  /** Upstream's ruleset shape (objects.ts); A when absent. */
  readonly generation?: NftGeneration;
  /** The masquerade mark ("0x00004000"), which generation B sets inline. */
  readonly mark?: string;
}

/** An element of one of the shared sets or maps. */
export interface PlacedElement {
  readonly set: string;
  readonly element: NftElement;
}

/** Everything one service port contributes to the table. */
export interface ServiceObjects {
  /** "ns/name:port/PROTOCOL". */
  readonly key: string;
  /** See flatten(). */
  readonly flattened: number;
  /** In upstream's ensureChain order: endpoint chains, service-, local-, external-, firewall-. */
  readonly chains: readonly NftChain[];
  readonly affinitySets: readonly NftSet[];
  readonly elements: readonly PlacedElement[];
  /** Local policy without local endpoints (sync_proxy_rules_no_local_endpoints_total). */
  readonly noLocalInternal: boolean;
  readonly noLocalExternal: boolean;
}

// Kept by the render cache until the service port changes: each chain's rules as one text.
const chain = (name: string, rules: readonly string[]): NftChain => new PackedChain(name, rules);

const NONE: readonly never[] = Object.freeze([]);
/** A kept list at its size: one shared empty list, or a copy without the spare room that pushing left. */
const fit = <T>(list: readonly T[]): readonly T[] => (list.length === 0 ? NONE : list.slice());

export function renderService(state: ServicePortState, ctx: ServiceContext): ServiceObjects {
  const sp = state.service;
  const { cluster, local, allReachable, hasAny } = state.selection;
  const ipX = ctx.family;
  const proto = sp.protocol.toLowerCase();
  const names = servicePortNames(sp);
  const affinity = sp.sessionAffinityTimeout > 0;
  const epNames = new Map(allReachable.map((ep) => [ep, endpointNames(sp, ep)]));

  const clusterEndpoints = cluster ?? [];
  const localEndpoints = local ?? [];
  const usesClusterChain = clusterEndpoints.length > 0 && usesClusterEndpoints(sp);
  const usesLocalChain = localEndpoints.length > 0 && usesLocalEndpoints(sp);
  const internalChain = sp.internalPolicyLocal ? names.local : names.service;
  const hasInternal = hasAny && (!sp.internalPolicyLocal || localEndpoints.length > 0);
  const externalPolicyChain = sp.externalPolicyLocal ? names.local : names.service;
  const hasExternal = hasAny && (!sp.externalPolicyLocal || localEndpoints.length > 0);
  const usesExternalChain = hasAny && externallyAccessible(sp);
  const usesFirewall = sp.loadBalancerVIPs.length > 0 && sp.loadBalancerSourceRanges.length > 0;

  // Verdicts for traffic that finds no endpoint: none anywhere -> reject; Local policy without local ones -> drop.
  const internalVerdict = hasAny ? 'drop' : `goto ${REJECT_CHAIN}`;
  const externalVerdict = hasAny ? 'drop' : `goto ${REJECT_CHAIN}`;

  const elements: PlacedElement[] = [];
  const put = (set: string, key: string, value: string | null, comment: string | null = null) =>
    elements.push({ set, element: { key, value, comment: comment === null ? null : nftComment(comment) } });
  const addrKey = (ip: string) => `${ip} . ${proto} . ${sp.port}`;

  // Generation B: endpoint chains only where something must happen per endpoint before the DNAT (the affinity
  // update; here also --traffic-counters, whose counters are the endpoint chains'). The hairpin masquerade is a set
  // element per local endpoint instead of a rule in its chain (upstream writes these before the ClusterIP's).
  const genB = ctx.generation === 'B';
  const endpointChains = !genB || affinity || ctx.counters === true;
  const masquerade = genB ? `mark set mark or ${ctx.mark ?? '0x00004000'}` : `jump ${MARK_FOR_MASQUERADE}`;
  if (genB) for (const ep of allReachable) if (ep.isLocal) put(HAIRPIN_CONNECTIONS, `${ep.ip} . ${ep.ip} . ${proto} . ${ep.port}`, null);

  put(CLUSTER_IPS, sp.clusterIP, null);
  if (hasInternal) put(SERVICE_IPS, addrKey(sp.clusterIP), `goto ${internalChain}`);
  else put(NO_ENDPOINT_SERVICES, addrKey(sp.clusterIP), internalVerdict, sp.key);
  for (const ip of sp.externalIPs) {
    if (hasAny) put(SERVICE_IPS, addrKey(ip), `goto ${names.external}`);
    if (!hasExternal) put(NO_ENDPOINT_SERVICES, addrKey(ip), externalVerdict, sp.key);
  }
  for (const ip of sp.loadBalancerVIPs) {
    if (hasAny) put(SERVICE_IPS, addrKey(ip), `goto ${names.external}`);
    if (usesFirewall) put(FIREWALL_IPS, addrKey(ip), `goto ${names.firewall}`);
  }
  if (!hasExternal) for (const ip of sp.loadBalancerVIPs) put(NO_ENDPOINT_SERVICES, addrKey(ip), externalVerdict, sp.key);
  if (sp.nodePort !== 0) {
    if (hasAny) put(SERVICE_NODEPORTS, `${proto} . ${sp.nodePort}`, `goto ${names.external}`);
    if (!hasExternal) put(NO_ENDPOINT_NODEPORTS, `${proto} . ${sp.nodePort}`, externalVerdict, sp.key);
  }

  const chains: NftChain[] = [];
  if (endpointChains) {
    for (const ep of allReachable) {
      const n = epNames.get(ep)!;
      chains.push(chain(n.chain, endpointRules(ep, proto, ipX, affinity ? n.affinitySet : null, ctx.counters ? n.chain : null, !genB)));
    }
  }

  // The ClusterIP masquerade rule goes first into the internal policy chain (generation B: one rule in `services`).
  const internalMasq: string[] = [];
  if (hasInternal && !genB) {
    if (ctx.masqueradeAll) internalMasq.push(`${ipX} daddr ${sp.clusterIP} jump ${MARK_FOR_MASQUERADE}`);
    else if (ctx.detector.ifNotLocal !== null)
      internalMasq.push(`${ipX} daddr ${sp.clusterIP} ${ctx.detector.ifNotLocal} jump ${MARK_FOR_MASQUERADE}`);
  }
  const policyRules = (name: string, eps: typeof clusterEndpoints) => {
    if (!endpointChains) return [dnatMapRule(eps, proto, ipX)];
    const rules = policyChainRules(
      eps.map((ep) => epNames.get(ep)!),
      ipX,
      affinity,
    );
    return name === internalChain && internalMasq.length > 0 ? [...internalMasq, ...rules] : rules;
  };
  if (usesClusterChain) chains.push(chain(names.service, policyRules(names.service, clusterEndpoints)));
  if (usesLocalChain) chains.push(chain(names.local, policyRules(names.local, localEndpoints)));

  if (usesExternalChain) {
    const ext: string[] = [];
    if (!sp.externalPolicyLocal) {
      ext.push(genB ? `${masquerade} comment "masquerade"` : masquerade);
    } else {
      if (ctx.detector.ifLocal !== null) ext.push(`${ctx.detector.ifLocal} goto ${names.service} comment "short-circuit pod traffic"`);
      ext.push(`fib saddr type local ${masquerade} comment "masquerade local traffic"`);
      ext.push(`fib saddr type local goto ${names.service} comment "short-circuit local traffic"`);
    }
    if (hasExternal) ext.push(`goto ${externalPolicyChain}`);
    chains.push(chain(names.external, ext));
  }

  if (usesFirewall) {
    const sources = [...sp.loadBalancerSourceRanges];
    if (sp.loadBalancerSourceRanges.some((c) => ctx.cidrContains(c, ctx.nodeIP))) sources.push(...sp.loadBalancerVIPs);
    chains.push(chain(names.firewall, [`${ipX} saddr != { ${sources.join(' , ')} } drop`]));
  }

  const affinitySets: NftSet[] = affinity
    ? allReachable.map((ep) => ({
        name: epNames.get(ep)!.affinitySet,
        kind: 'set',
        type: addrType(ctx.family),
        flags: ['dynamic', 'timeout'],
        timeout: sp.sessionAffinityTimeout,
        comment: null,
        elements: null,
      }))
    : [];

  // join builds one flat string; a template literal keeps a tree of pieces.
  const key = [sp.key, '/', sp.protocol].join('');
  return {
    key,
    flattened: flatten(key, chains, affinitySets, elements),
    chains: fit(chains),
    affinitySets: fit(affinitySets),
    elements: fit(elements),
    noLocalInternal: hasAny && !hasInternal,
    noLocalExternal: hasAny && !hasExternal,
  };
}

/**
 * Names, rules and element texts are built by concatenation, which V8 keeps
 * as trees of cons strings (a rule of 60 characters: ~150 bytes in three
 * objects); the render cache keeps them for as long as the service port is
 * unchanged. Reading one character of each makes V8 flatten it in place
 * (iptables/render-service.ts does the same). The sum is returned (and kept)
 * so that the reads cannot be optimised away.
 */
function flatten(key: string, chains: readonly NftChain[], sets: readonly NftSet[], elements: readonly PlacedElement[]): number {
  let sum = key.charCodeAt(0);
  for (const c of chains) {
    sum += c.name.charCodeAt(0); // the rules are one flat text already (PackedChain)
  }
  for (const s of sets) sum += s.name.charCodeAt(0);
  for (const { element } of elements) {
    sum += element.key.charCodeAt(0);
    if (element.value !== null) sum += element.value.charCodeAt(0);
  }
  return sum;
}
