/**
 * Builders of the proxier's domain objects (ServicePort, Endpoint,
 * ServicePortState, NodeInfo) for tests of the renderer, planner and
 * conntrack plan, which start from desired state rather than from API objects
 * (see builders.ts for those).
 */
import type { Endpoint, NodeInfo, ServicePort, ServicePortState, Snapshot } from '../proxier/types.ts';

export function nodeInfo(over: Partial<NodeInfo> = {}): NodeInfo {
  return {
    name: 'test-node',
    known: true,
    addresses: ['192.168.0.2'],
    primaryIP: '192.168.0.2',
    secondaryIP: null,
    labels: {},
    zone: null,
    podCIDRs: ['10.0.0.0/24'],
    deleting: false,
    toBeDeletedByAutoscaler: false,
    ...over,
  };
}

export function servicePort(over: Partial<ServicePort> = {}): ServicePort {
  return {
    key: 'ns1/svc1:p80',
    namespace: 'ns1',
    name: 'svc1',
    portName: 'p80',
    protocol: 'TCP',
    clusterIP: '172.30.0.41',
    port: 80,
    nodePort: 0,
    externalIPs: [],
    loadBalancerVIPs: [],
    loadBalancerSourceRanges: [],
    sessionAffinityTimeout: 0,
    externalPolicyLocal: false,
    internalPolicyLocal: false,
    healthCheckNodePort: 0,
    trafficDistribution: null,
    ...over,
  };
}

export function endpoint(ip: string, over: Partial<Endpoint> = {}): Endpoint {
  return {
    ip,
    port: 80,
    ready: true,
    serving: true,
    terminating: false,
    nodeName: null,
    zone: null,
    isLocal: false,
    zoneHints: null,
    nodeHints: null,
    ...over,
  };
}

/** A state whose selection uses every endpoint for Cluster policy (what most renderer tests need). */
export function portState(service: ServicePort, endpoints: Endpoint[]): ServicePortState {
  return {
    service,
    endpoints,
    selection: { cluster: endpoints, local: null, allReachable: endpoints, hasAny: endpoints.length > 0, topologyReason: null },
  };
}

export function snapshotOf(services: ServicePortState[], over: Partial<Snapshot> = {}): Snapshot {
  return { family: 'IPv4', node: nodeInfo(), services, ...over };
}
