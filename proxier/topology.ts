/**
 * Which endpoints each traffic policy of a service port uses on this node:
 * upstream's CategorizeEndpoints (pkg/proxy/topology.go), including the
 * topology hints (PreferSameNode / PreferSameZone) and the fallback to
 * serving-but-terminating endpoints. Pure; the reason for applying or
 * ignoring hints is returned for logging instead of being logged.
 */
import { endpointString, externallyAccessible } from './types.ts';
import type { Endpoint, EndpointSelection, NodeInfo, ServicePort } from './types.ts';

/** The feature gates the state builder reads (the topology's, and AllowServiceExternalIPs for the service ports). */
export interface TopologyFeatures {
  /** Feature gate PreferSameTrafficDistribution (node hints). */
  readonly preferSameTrafficDistribution: boolean;
  /** Feature gate AllowServiceExternalIPs (v1.36+, default true): false, Services' externalIPs are not programmed. */
  readonly allowServiceExternalIPs?: boolean;
}

/** Upstream UsesClusterEndpoints: iTP Cluster, or reachable from outside (eTP Local short-circuits need them too). */
export function usesClusterEndpoints(sp: ServicePort): boolean {
  return !sp.internalPolicyLocal || externallyAccessible(sp);
}

/** Upstream UsesLocalEndpoints. */
export function usesLocalEndpoints(sp: ServicePort): boolean {
  return sp.internalPolicyLocal || (sp.externalPolicyLocal && externallyAccessible(sp));
}

type TopologyMode = '' | 'PreferSameNode' | 'PreferSameZone';

interface TopologyDecision {
  readonly mode: TopologyMode;
  readonly reason: string | null;
}

export function categorizeEndpoints(
  endpoints: readonly Endpoint[],
  sp: ServicePort,
  node: Pick<NodeInfo, 'name' | 'zone'>,
  features: TopologyFeatures,
): EndpointSelection {
  const useCluster = usesClusterEndpoints(sp);
  const useLocal = usesLocalEndpoints(sp);
  if (endpoints.length === 0) {
    return { cluster: useCluster ? [] : null, local: useLocal ? [] : null, allReachable: [], hasAny: false, topologyReason: null };
  }

  let cluster: Endpoint[] | null = null;
  let topology: TopologyDecision = { mode: '', reason: null };
  let hasAny = false;
  if (useCluster) {
    topology = topologyMode(endpoints, node, features);
    cluster = endpoints.filter((ep) => ep.ready && availableForTopology(ep, topology.mode, node));
    // Usually every endpoint is ready: share the list (filter's copy grows by doubling, ~150 B for 5 endpoints).
    if (cluster.length === endpoints.length) cluster = endpoints as Endpoint[];
    // Topology never leaves us without ready endpoints (it is ignored then), so an empty
    // list here means nothing is ready anywhere: fall back to serving-terminating ones.
    if (cluster.length === 0) cluster = endpoints.filter((ep) => ep.serving && ep.terminating);
    hasAny = cluster.length > 0;
  }
  if (!useLocal) return { cluster, local: null, allReachable: cluster ?? [], hasAny, topologyReason: topology.reason };

  let localReady = false;
  let localTerminating = false;
  for (const ep of endpoints) {
    if (ep.ready) {
      hasAny = true;
      localReady ||= ep.isLocal;
    } else if (ep.serving && ep.terminating) {
      hasAny = true;
      localTerminating ||= ep.isLocal;
    }
  }
  let local: Endpoint[] = [];
  if (localReady) local = endpoints.filter((ep) => ep.isLocal && ep.ready);
  else if (localTerminating) local = endpoints.filter((ep) => ep.isLocal && ep.serving && ep.terminating);

  if (cluster === null) return { cluster: null, local, allReachable: local, hasAny, topologyReason: topology.reason };
  // Unfiltered cluster endpoints are every ready one: a superset of local ones unless those are terminating.
  const localUsesTerminating = !localReady && localTerminating;
  const allReachable = topology.mode === '' && !localUsesTerminating ? cluster : union(cluster, local);
  return { cluster, local, allReachable, hasAny, topologyReason: topology.reason };
}

/**
 * Upstream topologyModeFromHints: PreferSameNode when (with the feature on)
 * every ready endpoint has node hints and one names this node; else
 * PreferSameZone when every ready endpoint has zone hints and one names this
 * node's zone; else no filtering.
 */
function topologyMode(endpoints: readonly Endpoint[], node: Pick<NodeInfo, 'name' | 'zone'>, features: TopologyFeatures): TopologyDecision {
  const zone = node.zone ?? '';
  let anyReady = false;
  let allNodeHints = true;
  let anyNodeHint = false;
  let forNode = false;
  let allZoneHints = true;
  let anyZoneHint = false;
  let forZone = false;
  for (const ep of endpoints) {
    if (!ep.ready) continue;
    anyReady = true;
    if (!ep.nodeHints || ep.nodeHints.length === 0) allNodeHints = false;
    else {
      anyNodeHint = true;
      forNode ||= ep.nodeHints.includes(node.name);
    }
    if (!ep.zoneHints || ep.zoneHints.length === 0) allZoneHints = false;
    else {
      anyZoneHint = true;
      forZone ||= ep.zoneHints.includes(zone);
    }
  }
  if (!anyReady) return { mode: '', reason: null };

  const reasons: string[] = [];
  if (features.preferSameTrafficDistribution && anyNodeHint) {
    if (allNodeHints && forNode) return { mode: 'PreferSameNode', reason: `PreferSameNode: using endpoints hinted for node ${node.name}` };
    reasons.push(allNodeHints ? `no endpoint is hinted for node ${node.name}` : 'some ready endpoints have no node hints');
  }
  if (anyZoneHint) {
    if (allZoneHints && forZone) return { mode: 'PreferSameZone', reason: `PreferSameZone: using endpoints hinted for zone ${zone}` };
    if (!allZoneHints) reasons.push('some ready endpoints have no zone hints');
    else if (zone === '') reasons.push('this node has no topology.kubernetes.io/zone label');
    else reasons.push(`no endpoint is hinted for zone ${zone}`);
  }
  return { mode: '', reason: reasons.length > 0 ? `ignoring topology hints: ${reasons.join('; ')}` : null };
}

function availableForTopology(ep: Endpoint, mode: TopologyMode, node: Pick<NodeInfo, 'name' | 'zone'>): boolean {
  if (mode === 'PreferSameNode') return ep.nodeHints?.includes(node.name) ?? false;
  if (mode === 'PreferSameZone') return ep.zoneHints?.includes(node.zone ?? '') ?? false;
  return true;
}

/** Union of two lists, sorted by "ip:port" (both inputs come from one sorted list). */
function union(a: readonly Endpoint[], b: readonly Endpoint[]): Endpoint[] {
  const byKey = new Map<string, Endpoint>();
  for (const ep of a) byKey.set(endpointString(ep), ep);
  for (const ep of b) byKey.set(endpointString(ep), ep);
  return [...byKey].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0)).map((kv) => kv[1]);
}
