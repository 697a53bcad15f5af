/**
 * Mode-independent domain types: the contract between proxier/ (which turns
 * cluster objects into desired state) and the modes (iptables/, userspace/),
 * which turn desired state into rules or listeners.
 *
 * Everything here is plain, readonly, JSON-serialisable data. Chain names and
 * other mode-specific derivations are never stored here.
 */

export type Protocol = 'TCP' | 'UDP' | 'SCTP';
export type IPFamily = 'IPv4' | 'IPv6';

/**
 * One port of one Service, as seen by one IP family's proxier.
 * `key` is upstream's ServicePortName.String(): "ns/name" plus ":portName"
 * when the port has a name.
 */
export interface ServicePort {
  readonly key: string;
  readonly namespace: string;
  readonly name: string;
  readonly portName: string;
  readonly protocol: Protocol;
  /** The cluster IP of this family (already normalised, e.g. no leading zeros). */
  readonly clusterIP: string;
  readonly port: number;
  /** 0 when the port has no node port. */
  readonly nodePort: number;
  /** Only this family's addresses, normalised. */
  readonly externalIPs: readonly string[];
  /** Load-balancer ingress IPs of this family (ipMode VIP or unset). */
  readonly loadBalancerVIPs: readonly string[];
  /** CIDRs of this family, trimmed and normalised ("1.2.3.0/24"). */
  readonly loadBalancerSourceRanges: readonly string[];
  /** 0 when sessionAffinity is not ClientIP; else the timeout in seconds. */
  readonly sessionAffinityTimeout: number;
  readonly externalPolicyLocal: boolean;
  readonly internalPolicyLocal: boolean;
  /** 0 when there is none (only LoadBalancer + externalTrafficPolicy Local). */
  readonly healthCheckNodePort: number;
  /** spec.trafficDistribution, when set (PreferClose, PreferSameZone, PreferSameNode). */
  readonly trafficDistribution: string | null;
}

/** One endpoint (address + port) of one service port, merged over all slices. */
export interface Endpoint {
  readonly ip: string;
  readonly port: number;
  readonly ready: boolean;
  readonly serving: boolean;
  readonly terminating: boolean;
  readonly nodeName: string | null;
  readonly zone: string | null;
  /** nodeName equals this proxier's node name. */
  readonly isLocal: boolean;
  /** hints.forZones names, or null when the endpoint carries no zone hints. */
  readonly zoneHints: readonly string[] | null;
  /** hints.forNodes names, or null when the endpoint carries no node hints. */
  readonly nodeHints: readonly string[] | null;
}

/** Result of upstream's CategorizeEndpoints for one service port. */
export interface EndpointSelection {
  /** Endpoints for "Cluster" traffic policy, or null if the service port does not use them. */
  readonly cluster: readonly Endpoint[] | null;
  /** Endpoints for "Local" traffic policy, or null if the service port does not use them. */
  readonly local: readonly Endpoint[] | null;
  /** Union of cluster and local: every endpoint this node may send to (gets an endpoint chain). */
  readonly allReachable: readonly Endpoint[];
  /** Whether the service has any usable endpoint at all (decides REJECT). */
  readonly hasAny: boolean;
  /** Why topology filtering did or did not apply (for logs); null when not applicable. */
  readonly topologyReason: string | null;
}

export interface ServicePortState {
  readonly service: ServicePort;
  /** All endpoints of this family, de-duplicated and sorted by "ip:port". */
  readonly endpoints: readonly Endpoint[];
  readonly selection: EndpointSelection;
}

/** What the proxier knows about its own node. */
export interface NodeInfo {
  readonly name: string;
  /** False until the Node object has been seen (health checks need it). */
  readonly known: boolean;
  /** Every InternalIP and ExternalIP in status.addresses (all families), normalised, in the Node's order. */
  readonly addresses: readonly string[];
  /**
   * The node IP of the primary family, which it decides: a specific --bind-address, else the first InternalIP (else
   * the first ExternalIP); null when there is none (upstream detectNodeIPs over GetNodeHostIPs).
   */
  readonly primaryIP: string | null;
  /** The node IP of the other family: its first InternalIP, else its first ExternalIP; null when there is none. */
  readonly secondaryIP: string | null;
  readonly labels: Readonly<Record<string, string>>;
  /** topology.kubernetes.io/zone label, or null. */
  readonly zone: string | null;
  readonly podCIDRs: readonly string[];
  /** True when metadata.deletionTimestamp is set. */
  readonly deleting: boolean;
  /** True when the node carries the ToBeDeletedByClusterAutoscaler taint. */
  readonly toBeDeletedByAutoscaler: boolean;
}

/** The complete desired state for one IP family. */
export interface Snapshot {
  readonly family: IPFamily;
  readonly node: NodeInfo;
  /** Sorted by service port key, then protocol. */
  readonly services: readonly ServicePortState[];
  /**
   * The cluster's ServiceCIDRs of this family (ServiceCIDR objects' spec.cidrs, canonical, sorted, once each); absent
   * or empty when none are known. Only the nftables mode uses them (upstream OnServiceCIDRsChanged).
   */
  readonly serviceCIDRs?: readonly string[];
  /**
   * This host's interface addresses (every family) as the agent last read them (proxier.ts: at least once a sync
   * period): where --nodeport-addresses selects the NodePort destinations, as upstream's NodePortAddresses.GetNodeIPs
   * lists net.InterfaceAddrs. Absent when the snapshot comes from objects alone (render, trace --objects): the Node
   * object's addresses and loopback stand in (hostAddressesOf).
   */
  readonly hostAddresses?: readonly string[];
}

/** Something upstream would not program, named precisely. */
export interface ObjectProblem {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  /** JSON-ish path of the offending field, e.g. "spec.ports[1].port"; "" when the whole object. */
  readonly field: string;
  readonly reason: string;
}

export function formatProblem(p: ObjectProblem): string {
  const obj = p.namespace ? `${p.kind} ${p.namespace}/${p.name}` : `${p.kind} ${p.name}`;
  return p.field ? `${obj}: ${p.field}: ${p.reason}` : `${obj}: ${p.reason}`;
}

/** "ip:port", with IPv6 in brackets (Go net.JoinHostPort). */
export function endpointString(ep: { readonly ip: string; readonly port: number }): string {
  return ep.ip.includes(':') ? `[${ep.ip}]:${ep.port}` : `${ep.ip}:${ep.port}`;
}

/** Whether the service port is reachable from outside the cluster network (upstream ExternallyAccessible). */
export function externallyAccessible(sp: ServicePort): boolean {
  return sp.nodePort !== 0 || sp.externalIPs.length > 0 || sp.loadBalancerVIPs.length > 0;
}
