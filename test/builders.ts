/**
 * Builders of raw, JSON-like Service, EndpointSlice and Node objects for
 * tests: what an API server would hand out (defaulted fields filled in), with
 * terse options for what tests vary. Every option maps to one field; `spec`,
 * `status` and `metadata` merge raw fields on top for anything else,
 * including deliberately malformed values.
 */
import { isRecord, SERVICE_NAME_LABEL, type Json } from '../proxier/raw.ts';

export interface PortSpec {
  readonly name?: string;
  readonly port?: number;
  readonly targetPort?: number | string;
  readonly protocol?: string;
  readonly nodePort?: number;
  readonly [field: string]: unknown;
}

export interface ServiceOptions {
  /** Default: derived from namespace/name inside 172.30.0.0/16. "None" makes it headless. */
  readonly clusterIP?: string;
  /** Default [clusterIP]; ipFamilies follow the addresses' families, as the API server defaults them. */
  readonly clusterIPs?: readonly string[];
  readonly ipFamilies?: readonly string[];
  readonly type?: string;
  /** Default one TCP port 80 named "p80"; entries like PortSpec (protocol default TCP, targetPort default port), or anything raw. */
  readonly ports?: readonly (PortSpec | unknown)[];
  readonly externalIPs?: readonly string[];
  /** Shorthand for one status.loadBalancer.ingress IP (also set as spec.loadBalancerIP). */
  readonly loadBalancerIP?: string;
  /** Raw status.loadBalancer.ingress entries. */
  readonly ingress?: readonly unknown[];
  readonly loadBalancerSourceRanges?: readonly string[];
  readonly externalTrafficPolicy?: string;
  readonly internalTrafficPolicy?: string;
  readonly healthCheckNodePort?: number;
  readonly sessionAffinity?: string;
  /** Sets sessionAffinityConfig.clientIP.timeoutSeconds (default 10800 with ClientIP). */
  readonly sessionAffinityTimeout?: number;
  readonly trafficDistribution?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly metadata?: Json;
  readonly spec?: Json;
  readonly status?: Json;
}

const DEFAULT_PORTS: readonly PortSpec[] = [{ name: 'p80', port: 80 }];

function hash(text: string): number {
  let h = 5381;
  for (let i = 0; i < text.length; i++) h = ((h * 33) ^ text.charCodeAt(i)) >>> 0;
  return h;
}

const familyOf = (ip: string): string => (ip.includes(':') ? 'IPv6' : 'IPv4');

export function makeService(namespace: string, name: string, o: ServiceOptions = {}): Json {
  const h = hash(`${namespace}/${name}`);
  const clusterIP = o.clusterIP ?? o.clusterIPs?.[0] ?? `172.30.${h % 256}.${((h >>> 8) % 254) + 1}`;
  const clusterIPs = o.clusterIPs ?? [clusterIP];
  const headless = clusterIP === 'None';
  const spec: Json = {
    type: o.type ?? 'ClusterIP',
    clusterIP,
    clusterIPs,
    ipFamilies: o.ipFamilies ?? (headless ? ['IPv4'] : clusterIPs.map(familyOf)),
    ports: (o.ports ?? DEFAULT_PORTS).map((p) => (isRecord(p) ? { protocol: 'TCP', targetPort: p['port'], ...p } : p)),
    sessionAffinity: o.sessionAffinity ?? 'None',
    internalTrafficPolicy: o.internalTrafficPolicy ?? 'Cluster',
  };
  if (spec['type'] !== 'ClusterIP') spec['externalTrafficPolicy'] = o.externalTrafficPolicy ?? 'Cluster';
  else if (o.externalTrafficPolicy !== undefined) spec['externalTrafficPolicy'] = o.externalTrafficPolicy;
  if (o.sessionAffinity === 'ClientIP') spec['sessionAffinityConfig'] = { clientIP: { timeoutSeconds: o.sessionAffinityTimeout ?? 10800 } };
  if (o.externalIPs) spec['externalIPs'] = [...o.externalIPs];
  if (o.loadBalancerSourceRanges) spec['loadBalancerSourceRanges'] = [...o.loadBalancerSourceRanges];
  if (o.healthCheckNodePort !== undefined) spec['healthCheckNodePort'] = o.healthCheckNodePort;
  if (o.trafficDistribution !== undefined) spec['trafficDistribution'] = o.trafficDistribution;
  if (o.loadBalancerIP !== undefined) spec['loadBalancerIP'] = o.loadBalancerIP;
  const ingress = o.ingress ?? (o.loadBalancerIP !== undefined ? [{ ip: o.loadBalancerIP }] : []);
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace, ...(o.labels ? { labels: { ...o.labels } } : {}), ...o.metadata },
    spec: { ...spec, ...o.spec },
    status: { loadBalancer: ingress.length > 0 ? { ingress: [...ingress] } : {}, ...o.status },
  };
}

export interface EndpointSpec {
  readonly ip?: string;
  /** All addresses (only the first one is used by kube-proxy); default [ip]. */
  readonly addresses?: readonly string[];
  readonly nodeName?: string;
  readonly zone?: string;
  readonly ready?: boolean;
  readonly serving?: boolean;
  readonly terminating?: boolean;
  /** Raw conditions, used as is (overrides ready/serving/terminating). */
  readonly conditions?: Json;
  readonly zoneHints?: readonly string[];
  readonly nodeHints?: readonly string[];
  readonly [field: string]: unknown;
}

export interface SliceOptions {
  readonly endpoints?: readonly EndpointSpec[];
  /** Shorthand: ready endpoints with just these IPs. */
  readonly addresses?: readonly string[];
  /** Default one TCP port 80 named "p80"; entries like { name, port, protocol } (protocol default TCP), or anything raw. */
  readonly ports?: readonly unknown[];
  /** Default: the family of the first endpoint (IPv4 without endpoints). */
  readonly addressType?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly metadata?: Json;
}

function endpointOf(e: EndpointSpec): Json {
  const { ip, addresses, nodeName, zone, ready, serving, terminating, conditions, zoneHints, nodeHints, ...rest } = e;
  const out: Json = {
    addresses: [...(addresses ?? (ip !== undefined ? [ip] : []))],
    conditions: conditions ?? { ready: ready ?? true, serving: serving ?? ready ?? true, terminating: terminating ?? false },
    ...rest,
  };
  if (nodeName !== undefined) out['nodeName'] = nodeName;
  if (zone !== undefined) out['zone'] = zone;
  if (zoneHints || nodeHints) {
    out['hints'] = {
      ...(zoneHints ? { forZones: zoneHints.map((z) => ({ name: z })) } : {}),
      ...(nodeHints ? { forNodes: nodeHints.map((n) => ({ name: n })) } : {}),
    };
  }
  return out;
}

/**
 * makeEndpointSlice(ns, svc, options) or makeEndpointSlice(ns, svc, sliceName, options).
 * The default slice name is derived from the service name and the endpoints, so
 * two different slices of one service get different names.
 */
export function makeEndpointSlice(
  namespace: string,
  serviceName: string,
  nameOrOptions: string | SliceOptions = {},
  options: SliceOptions = {},
): Json {
  const o = typeof nameOrOptions === 'string' ? options : nameOrOptions;
  const endpoints = [...(o.endpoints ?? []), ...(o.addresses ?? []).map((ip) => ({ ip }))].map(endpointOf);
  const first = (endpoints[0]?.['addresses'] as string[] | undefined)?.[0];
  const addressType = o.addressType ?? (first ? familyOf(first) : 'IPv4');
  const ports = (o.ports ?? DEFAULT_PORTS).map((p) => (isRecord(p) ? { protocol: 'TCP', ...p } : p));
  const name =
    typeof nameOrOptions === 'string'
      ? nameOrOptions
      : `${serviceName}-${hash(JSON.stringify([addressType, endpoints, ports]))
          .toString(36)
          .slice(0, 5)}`;
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace, labels: { [SERVICE_NAME_LABEL]: serviceName, ...o.labels }, ...o.metadata },
    addressType,
    endpoints,
    ports,
  };
}

export interface NodeOptions {
  /** InternalIP addresses. */
  readonly addresses?: readonly string[];
  readonly externalAddresses?: readonly string[];
  readonly zone?: string;
  readonly podCIDR?: string;
  /** Default [podCIDR] when podCIDR is given. */
  readonly podCIDRs?: readonly string[];
  readonly labels?: Readonly<Record<string, string>>;
  readonly taints?: readonly Json[];
  /** Sets metadata.deletionTimestamp. */
  readonly deleting?: boolean;
  readonly metadata?: Json;
  readonly spec?: Json;
  readonly status?: Json;
}

export function makeNode(name: string, o: NodeOptions = {}): Json {
  const labels: Json = { 'kubernetes.io/hostname': name, ...(o.zone !== undefined ? { 'topology.kubernetes.io/zone': o.zone } : {}), ...o.labels };
  const spec: Json = {};
  const podCIDRs = o.podCIDRs ?? (o.podCIDR !== undefined ? [o.podCIDR] : undefined);
  if (podCIDRs) {
    spec['podCIDR'] = o.podCIDR ?? podCIDRs[0];
    spec['podCIDRs'] = [...podCIDRs];
  }
  if (o.taints) spec['taints'] = [...o.taints];
  const addresses = [
    ...(o.addresses ?? []).map((a) => ({ type: 'InternalIP', address: a })),
    ...(o.externalAddresses ?? []).map((a) => ({ type: 'ExternalIP', address: a })),
    { type: 'Hostname', address: name },
  ];
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels, ...(o.deleting ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}), ...o.metadata },
    spec: { ...spec, ...o.spec },
    status: { addresses, ...o.status },
  };
}

/** A ServiceCIDR (networking.k8s.io/v1), as the API server's default "kubernetes" one. */
export function makeServiceCIDR(name: string, cidrs: readonly string[]): Json {
  return { apiVersion: 'networking.k8s.io/v1', kind: 'ServiceCIDR', metadata: { name }, spec: { cidrs: [...cidrs] } };
}
