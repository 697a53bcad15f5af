/**
 * renderRuleset: the desired state of one IP family plus the node settings ->
 * the complete kube-proxy ruleset (filter + nat), as upstream's iptables
 * proxier would write it on a full sync. Pure: no I/O, no clock.
 *
 * Per-service output is memoised by ServicePortState identity in an optional
 * RenderCache, so a sync after one change re-renders one service.
 */
import { cidrContainsText } from '../proxier/ip.ts';
import { hostAddressesOf, isLoopbackText, primaryIPOf, rangeCheckNodeIP, selectNodePortAddresses } from '../proxier/node-ports.ts';
import { ServiceRenderCache } from '../proxier/render-cache.ts';
import type { IPFamily, ServicePortState, Snapshot } from '../proxier/types.ts';
import {
  fixedChainsOf,
  KUBE_EXTERNAL_SERVICES,
  KUBE_FIREWALL,
  KUBE_FORWARD,
  KUBE_MARK_MASQ,
  KUBE_NODEPORTS,
  KUBE_POSTROUTING,
  KUBE_PROXY_FIREWALL,
  KUBE_SERVICES,
} from './chains.ts';
import { makeLocalDetector, NO_LOCAL_DETECTOR, type DetectLocalSettings, type LocalDetector } from './local-detector.ts';
import { CT_STATE_INVALID_DROPPED, LOCALHOST_NODEPORTS_ACCEPTED } from './nfacct.ts';
import { builtinChains, forwardRules, LOCALHOST_GUARD_RULE, markMasqRules, masqueradeMark, postroutingRules } from './render-base.ts';
import { outlineService, renderService, type ServiceRender, type ServiceRenderContext } from './render-service.ts';
import type { StreamedChains } from './restore-text.ts';
import type { Chain, Ruleset, Table } from './ruleset.ts';
import { gatherTopRules, TopRulesCache, type TopRules, type TopRulesShare } from './top-rules.ts';

export interface RenderOptions {
  /** --iptables-masquerade-bit (0-31, default 14). */
  readonly masqueradeBit: number;
  readonly masqueradeAll: boolean;
  /** Local-traffic detection settings; null = no detection (no --cluster-cidr etc.). */
  readonly detectLocal: DetectLocalSettings | null;
  /** --nodeport-addresses: CIDRs or "primary"; empty = all local addresses. */
  readonly nodePortAddresses: readonly string[];
  /** --iptables-localhost-nodeports (IPv4 only). */
  readonly localhostNodePorts: boolean;
  /** Append --random-fully to MASQUERADE (iptables >= 1.6.2). */
  readonly randomFully: boolean;
  /** net.netfilter.nf_conntrack_tcp_be_liberal is set: no INVALID drop. */
  readonly conntrackTCPLiberal: boolean;
  /** Endpoints above which per-endpoint comments are left out (upstream: 1000). */
  readonly largeClusterThreshold?: number;
  /** The nfacct counters that exist on the node (nfacct.ts): the rules that count into them match them (upstream nfacctMatchArgs). */
  readonly nfacctCounters?: ReadonlySet<string>;
}

export interface RenderResult {
  readonly ruleset: Ruleset;
  /** Things an operator should know (logged by the caller). */
  readonly warnings: readonly string[];
  readonly largeClusterMode: boolean;
  readonly localDetector: LocalDetector;
  /** Services with Local policy and no local endpoints, per policy (metrics). */
  readonly noLocalEndpoints: { readonly internal: number; readonly external: number };
  /** Every service port's render, in snapshot order (plan.ts compares them by identity). */
  readonly perService: readonly ServiceEntry[];
  /** The ruleset without the per-service chains (built-in and top-level chains only). */
  readonly topLevel: Ruleset;
}

/** One service port's contribution, keyed by "ns/name:port/PROTOCOL". */
export interface ServiceEntry {
  readonly key: string;
  readonly render: ServiceRender;
}

/** Per-service chain name -> service port name ("ns/name:port"), for reports. */
export function serviceOfChains(perService: readonly ServiceEntry[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const { key, render } of perService) for (const c of render.natChains) out.set(c.name, key.replace(/\/(TCP|UDP|SCTP)$/, ''));
  return out;
}

export const DEFAULT_RENDER_OPTIONS: RenderOptions = {
  masqueradeBit: 14,
  masqueradeAll: false,
  detectLocal: null,
  nodePortAddresses: [],
  localhostNodePorts: true,
  randomFully: true,
  conntrackTCPLiberal: false,
};

/** Per-service renders memoised by state identity: an unchanged service yields the same ServiceRender and Chain objects. */
export class RenderCache extends ServiceRenderCache<ServiceRender> {
  /** The top-level chains' rules of the last render (top-rules.ts). */
  readonly top = new TopRulesCache();
}

/** What every service port's render shares: the context, and the settings the top-level chains need. */
interface Prepared {
  readonly ctx: ServiceRenderContext;
  readonly ctxKey: string;
  readonly detector: LocalDetector;
  readonly nodePorts: ReturnType<typeof selectNodePortAddresses>;
  readonly localhostNodePorts: boolean;
  readonly largeClusterMode: boolean;
}

function prepare(snapshot: Snapshot, options: RenderOptions): Prepared {
  const family = snapshot.family;
  // The node IP is the Node object's (upstream's NodeIPs); the NodePorts are on this host's addresses (GetNodeIPs).
  const nodeIP = primaryIPOf(snapshot.node, family);
  const detector = options.detectLocal ? makeLocalDetector(options.detectLocal, family, snapshot.node) : NO_LOCAL_DETECTOR;
  const nodePorts = selectNodePortAddresses({
    cidrs: options.nodePortAddresses,
    family,
    localAddresses: hostAddressesOf(snapshot),
    primaryIP: nodeIP,
  });
  const localhostNodePorts = family === 'IPv4' && options.localhostNodePorts && nodePorts.containsIPv4Loopback;

  let totalEndpoints = 0;
  for (const s of snapshot.services) totalEndpoints += s.endpoints.length;
  const largeClusterMode = totalEndpoints > (options.largeClusterThreshold ?? 1000);

  const countLocalhostNodePorts = localhostNodePorts && options.nfacctCounters?.has(LOCALHOST_NODEPORTS_ACCEPTED) === true;
  const ctx: ServiceRenderContext = {
    masqueradeAll: options.masqueradeAll,
    detector,
    nodeIP: rangeCheckNodeIP(snapshot.node, family),
    largeClusterMode,
    cidrContains: cidrContainsText,
    countLocalhostNodePorts,
  };
  const ctxKey = JSON.stringify([options.masqueradeAll, detector.ifLocal, ctx.nodeIP, largeClusterMode, countLocalhostNodePorts]);
  return { ctx, ctxKey, detector, nodePorts, localhostNodePorts, largeClusterMode };
}

interface TopLevel {
  readonly top: TopRules;
  /** The ruleset without the per-service chains. */
  readonly ruleset: Ruleset;
  readonly warnings: readonly string[];
}

/** The built-in and top-level chains of both tables from every service port's share, in snapshot order. */
function topLevelOf(family: IPFamily, p: Prepared, shares: readonly TopRulesShare[], options: RenderOptions, cache?: RenderCache): TopLevel {
  const warnings: string[] = [];
  const { nodePorts, localhostNodePorts } = p;
  const mark = masqueradeMark(options.masqueradeBit);
  // The tail call to KUBE-NODEPORTS must stay the last rule of KUBE-SERVICES.
  const natTail: string[] = [];
  const nodePortsComment = '-m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain"';
  if (nodePorts.matchAll) {
    let dst = '-m addrtype --dst-type LOCAL';
    if (family === 'IPv6') dst += ' ! -d ::1/128';
    else if (!localhostNodePorts) dst += ' ! -d 127.0.0.0/8';
    natTail.push(`${nodePortsComment} ${dst} -j ${KUBE_NODEPORTS}`);
  } else {
    for (const ip of nodePorts.ips) {
      if (isLoopbackText(ip) && (family === 'IPv6' || !localhostNodePorts)) {
        warnings.push(
          family === 'IPv6'
            ? `--nodeport-addresses includes IPv6 loopback ${ip}, but localhost NodePorts are not supported on IPv6; ignored`
            : `--nodeport-addresses includes IPv4 loopback ${ip}, but localhost NodePorts are disabled; ignored`,
        );
        continue;
      }
      natTail.push(`${nodePortsComment} -d ${ip} -j ${KUBE_NODEPORTS}`);
    }
  }
  // Only renders are cached (a sync's); outlines are a one-shot render's.
  const top = cache ? cache.top.get(shares as readonly ServiceRender[], natTail) : gatherTopRules(shares, natTail);

  // The fixed chains in the order iptables/chains.ts declares them.
  const filterRules: Record<string, readonly string[]> = {
    [KUBE_SERVICES]: top.filterServices,
    [KUBE_EXTERNAL_SERVICES]: top.filterExternalServices,
    [KUBE_FORWARD]: forwardRules(mark, options.conntrackTCPLiberal, options.nfacctCounters?.has(CT_STATE_INVALID_DROPPED) === true),
    [KUBE_NODEPORTS]: top.filterNodePorts,
    [KUBE_PROXY_FIREWALL]: top.filterProxyFirewall,
  };
  const natRules: Record<string, readonly string[]> = {
    [KUBE_SERVICES]: top.natServices,
    [KUBE_NODEPORTS]: top.natNodePorts,
    [KUBE_POSTROUTING]: postroutingRules(mark, options.randomFully),
    [KUBE_MARK_MASQ]: markMasqRules(mark),
  };
  const fixed = (table: string, rules: Record<string, readonly string[]>): Chain[] =>
    fixedChainsOf('iptables', table).map((name) => ({ name, policy: null, rules: rules[name] ?? [] }));
  const filterChains: Chain[] = [...builtinChains('filter', localhostNodePorts), ...fixed('filter', filterRules)];
  if (localhostNodePorts) filterChains.push({ name: KUBE_FIREWALL, policy: null, rules: [LOCALHOST_GUARD_RULE] });
  const natTop: Chain[] = [...builtinChains('nat', false), ...fixed('nat', natRules)];
  return {
    top,
    ruleset: {
      family,
      tables: [
        { name: 'filter', chains: filterChains },
        { name: 'nat', chains: natTop },
      ],
    },
    warnings,
  };
}

export function renderRuleset(snapshot: Snapshot, options: RenderOptions, cache?: RenderCache): RenderResult {
  const family = snapshot.family;
  const p = prepare(snapshot, options);
  const renders: ServiceRender[] = [];
  const render = (s: ServicePortState) => renderService(s, p.ctx);
  for (const state of snapshot.services) renders.push(cache ? cache.get(state, p.ctxKey, render) : render(state));
  const { top, ruleset: topLevel, warnings } = topLevelOf(family, p, renders, options, cache);
  const [filter, natTop] = topLevel.tables as [Table, Table];

  let ruleset: Ruleset | null = null;
  return {
    // The whole nat table (every per-service chain too) is built when asked: a sync needs only topLevel and perService.
    get ruleset(): Ruleset {
      if (ruleset === null) {
        const nat: Chain[] = [...natTop.chains];
        for (const r of renders) for (const c of r.natChains) nat.push(c);
        ruleset = { family, tables: [filter, { name: 'nat', chains: nat }] };
      }
      return ruleset;
    },
    topLevel,
    warnings,
    largeClusterMode: p.largeClusterMode,
    localDetector: p.detector,
    noLocalEndpoints: { internal: top.noLocalInternal, external: top.noLocalExternal },
    perService: renders.map((r) => ({ key: r.key, render: r })),
  };
}

/** renderRuleset's ruleset with its per-service chains left to be built as they are written (writeRulesetText's `streamed`). */
export interface StreamedRender {
  /** The built-in and top-level chains (renderRuleset's topLevel). */
  readonly topLevel: Ruleset;
  /** Every per-service nat chain, in renderRuleset's order. */
  readonly streamed: ReadonlyMap<string, StreamedChains>;
  readonly warnings: readonly string[];
  readonly largeClusterMode: boolean;
  readonly localDetector: LocalDetector;
}

/**
 * renderRuleset for a one-shot `render`: only each service port's share of
 * the top-level chains and its chains' names are built up front; its chains'
 * rules are built when written (writeRulesetText(topLevel, opts, write,
 * streamed) writes exactly toRestoreText(renderRuleset(...).ruleset, opts)),
 * so the text starts sooner and its rules never pile up in memory.
 */
export function renderRulesetStreamed(snapshot: Snapshot, options: RenderOptions): StreamedRender {
  const p = prepare(snapshot, options);
  const outlines = snapshot.services.map((s) => outlineService(s, p.ctx));
  const { ruleset: topLevel, warnings } = topLevelOf(snapshot.family, p, outlines, options);
  const nat: StreamedChains = {
    *names() {
      for (const o of outlines) yield* o.chainNames;
    },
    *chains() {
      for (const o of outlines) yield o.chains();
    },
  };
  return { topLevel, streamed: new Map([['nat', nat]]), warnings, largeClusterMode: p.largeClusterMode, localDetector: p.detector };
}
