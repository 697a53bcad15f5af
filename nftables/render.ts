/**
 * renderNftables: the desired state of one IP family plus the node settings
 * -> everything kube-proxy wants in its `ip`/`ip6 kube-proxy` table, as
 * upstream's nftables proxier would have it after a sync. Pure: no I/O, no
 * clock. tableOf() materialises the whole table; the transaction writer works
 * from the parts (fixed objects, then one ServiceObjects per service port).
 *
 * Per-service output is memoised by ServicePortState identity in an optional
 * NftRenderCache, so a sync after one change re-renders one service port.
 */
import { cidrContainsText } from '../proxier/ip.ts';
import { hostAddressesOf, isLoopbackText, primaryIPOf, rangeCheckNodeIP, selectNodePortAddresses } from '../proxier/node-ports.ts';
import { ServiceRenderCache } from '../proxier/render-cache.ts';
import type { ServicePortState, Snapshot } from '../proxier/types.ts';
import { makeLocalDetector, type DetectLocalSettings, type NftLocalDetector } from './local-detector.ts';
import { nftFamily, TABLE_COMMENT, TABLE_NAME, type NftElement, type NftFamily, type NftSet, type NftTable } from './model.ts';
import { masqueradeMark, renderFixed, type FixedPart } from './render-base.ts';
import { renderService, type ServiceContext, type ServiceObjects } from './render-service.ts';
import { ENDPOINT_PREFIX } from './names.ts';
import { DEFAULT_GENERATION, type NftGeneration } from './objects.ts';

/** The named counters the render's rules count into (--traffic-counters): one per endpoint chain, of its name. */
export function counterNames(render: NftRender): string[] {
  if (!render.counters) return [];
  const out: string[] = [];
  for (const s of render.services) for (const c of s.chains) if (c.name.startsWith(ENDPOINT_PREFIX)) out.push(c.name);
  return out;
}

export interface NftRenderOptions {
  /** --iptables-masquerade-bit (0-31, default 14): upstream's nftables mode uses the same setting. */
  readonly masqueradeBit: number;
  readonly masqueradeAll: boolean;
  /** Local-traffic detection settings; null = no detection. */
  readonly detectLocal: DetectLocalSettings | null;
  /** --nodeport-addresses: CIDRs or "primary"; empty = ["primary"], the nftables mode's default. */
  readonly nodePortAddresses: readonly string[];
  /**
   * --traffic-counters (kube-proxy-ts only; upstream's ruleset has no counters): each endpoint chain's DNAT rule counts
   * into a named counter of the chain's name (counters.ts).
   */
  readonly trafficCounters?: boolean;
  /**
   * Upstream's ruleset shape (objects.ts NftGeneration): B (v1.36+; DEFAULT_GENERATION, what the mode writes) or A
   * (v1.33-1.35; upstream's A-era test dumps and the benches' comparisons). No flag selects it.
   */
  readonly generation?: NftGeneration;
}

export const DEFAULT_NFT_OPTIONS: NftRenderOptions = { masqueradeBit: 14, masqueradeAll: false, detectLocal: null, nodePortAddresses: [] };

export interface NftRender {
  readonly family: NftFamily;
  readonly fixed: FixedPart;
  /** One entry per service port, in snapshot order. */
  readonly services: readonly ServiceObjects[];
  readonly nodePortsMatchAll: boolean;
  readonly localDetector: NftLocalDetector;
  /** Things an operator should know (logged by the caller). */
  readonly warnings: readonly string[];
  readonly noLocalEndpoints: { readonly internal: number; readonly external: number };
  /** The endpoint chains count into named counters (--traffic-counters). */
  readonly counters: boolean;
  /** The ruleset shape rendered (options.generation, A by default). */
  readonly generation: NftGeneration;
}

/** Per-service output memoised by state identity; dropped when the shared context changes. */
export class NftRenderCache extends ServiceRenderCache<ServiceObjects> {}

export function renderNftables(snapshot: Snapshot, options: NftRenderOptions, cache?: NftRenderCache): NftRender {
  const family = nftFamily(snapshot.family);
  const warnings: string[] = [];
  // The node IP is the Node object's (upstream's NodeIPs, which "primary" turns into /32 and /128 CIDRs); nodeport-ips
  // holds this host's addresses inside the CIDRs (GetNodeIPs), so "primary" selects the node IP while an interface has it.
  const nodeIP = primaryIPOf(snapshot.node, snapshot.family);
  const detector = makeLocalDetector(options.detectLocal, snapshot.family, snapshot.node);

  const cidrs = options.nodePortAddresses.length > 0 ? options.nodePortAddresses : ['primary'];
  const selected = selectNodePortAddresses({ cidrs, family: snapshot.family, localAddresses: hostAddressesOf(snapshot), primaryIP: nodeIP });
  const nodePortIPs: string[] = [];
  for (const ip of selected.ips) {
    if (isLoopbackText(ip)) warnings.push(`--nodeport-addresses includes localhost but localhost NodePorts are not supported (address ${ip})`);
    else nodePortIPs.push(ip);
  }

  const generation = options.generation ?? DEFAULT_GENERATION;
  const mark = masqueradeMark(options.masqueradeBit);
  const fixed = renderFixed({
    family,
    mark,
    generation,
    masqueradeAll: options.masqueradeAll,
    ifNotLocal: detector.ifNotLocal,
    nodePortsMatchAll: selected.matchAll,
    nodePortIPs,
    // The snapshot's ServiceCIDRs (from ServiceCIDR objects): unallocated addresses in them are dropped.
    serviceCIDRs: snapshot.serviceCIDRs ?? [],
  });

  const counters = options.trafficCounters === true;
  const rangeIP = rangeCheckNodeIP(snapshot.node, snapshot.family);
  const ctx: ServiceContext = {
    family,
    masqueradeAll: options.masqueradeAll,
    detector,
    nodeIP: rangeIP,
    cidrContains: cidrContainsText,
    counters,
    generation,
    mark,
  };
  const ctxKey = JSON.stringify([family, options.masqueradeAll, detector.ifLocal, rangeIP, counters, generation, mark]);
  // Sized once: pushing 10,000 grew the array through ~20 copies, ~0.2 MB of garbage a sync.
  const services: ServiceObjects[] = new Array<ServiceObjects>(snapshot.services.length);
  let internal = 0;
  let external = 0;
  const render = (s: ServicePortState) => renderService(s, ctx); // one closure per sync, not one per service
  for (let i = 0; i < snapshot.services.length; i++) {
    const state = snapshot.services[i]!;
    const r = cache ? cache.get(state, ctxKey, render) : render(state);
    services[i] = r;
    if (r.noLocalInternal) internal++;
    if (r.noLocalExternal) external++;
  }
  return {
    family,
    fixed,
    services,
    nodePortsMatchAll: selected.matchAll,
    localDetector: detector,
    warnings,
    noLocalEndpoints: { internal, external },
    counters,
    generation,
  };
}

/**
 * Elements of every set and map as the services want them: keyed by set, then
 * element key; a key two service ports write (one ClusterIP, several ports)
 * is kept once, the later value winning as in upstream's element storage.
 */
export function desiredElements(render: NftRender): Map<string, Map<string, NftElement>> {
  const out = new Map<string, Map<string, NftElement>>();
  for (const set of render.fixed.sets) out.set(set.name, new Map((set.elements ?? []).map((e) => [e.key, e])));
  for (const svc of render.services) {
    for (const { set, element } of svc.elements) out.get(set)!.set(element.key, element);
  }
  return out;
}

/** The complete table the render describes. */
export function tableOf(render: NftRender): NftTable {
  const elements = desiredElements(render);
  const sets: NftSet[] = render.fixed.sets.map((s) => ({ ...s, elements: [...elements.get(s.name)!.values()] }));
  for (const svc of render.services) sets.push(...svc.affinitySets);
  return {
    family: render.family,
    name: TABLE_NAME,
    comment: TABLE_COMMENT,
    chains: [...render.fixed.chains, ...render.services.flatMap((s) => s.chains)],
    sets,
    ...(render.counters ? { counters: counterNames(render) } : {}),
  };
}
