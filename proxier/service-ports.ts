/**
 * One raw Service object -> the ServicePorts that one IP family's proxier
 * programs, as upstream's serviceToServiceMap / newBaseServiceInfo derive
 * them. The object is validated on the way, since it may come from a
 * hand-written file or an API server that does not validate: what upstream
 * could not decode or would not program is skipped and reported; what upstream
 * tolerates is programmed as upstream programs it (an unknown type is a plain
 * ClusterIP service, an unknown traffic policy is Cluster, an unknown affinity
 * is None, a node port counts whatever the type). Granularity: an invalid
 * service-level value (a traffic policy that is not a string, a timeout
 * iptables refuses) skips the Service, an invalid port skips that port, an
 * invalid address or source range skips that entry only.
 */
import { clusterIPFor } from './cluster-ip.ts';
import { parseCIDR, parseIP } from './ip.ts';
import type { IPFamily, ObjectProblem, Protocol, ServicePort } from './types.ts';
import { describeValue, isRecord, listField, metadataOf, type Json, type Report } from './raw.ts';

export const SERVICE_PROXY_NAME_LABEL = 'service.kubernetes.io/service-proxy-name';
export const HEADLESS_LABEL = 'service.kubernetes.io/headless';
/** API default of sessionAffinityConfig.clientIP.timeoutSeconds. */
export const DEFAULT_AFFINITY_TIMEOUT = 10800;
/**
 * timeoutSeconds is an int32 upstream: larger values cannot be decoded; values
 * above the API's 86400 are written as given (iptables takes 1-4294967295).
 */
const MAX_AFFINITY_TIMEOUT = 2147483647;
const PROTOCOLS: readonly string[] = ['TCP', 'UDP', 'SCTP'];

/** Records a problem; returns null so that `return report(...)` also means "nothing". */

export interface ServicePortsResult {
  readonly ports: ServicePort[];
  readonly problems: ObjectProblem[];
}

/**
 * Characters no iptables rule can carry. Namespace, name and port name end up
 * in rule comments; iptables-restore reads its input line by line as C
 * strings, so a newline or NUL cannot be written at all, and iptables-save
 * would print other control characters raw, leaving a saved ruleset that no
 * longer reads back line for line. The API server admits none of them (DNS
 * labels, IANA service names), so no working Service holds one: such an
 * object is skipped and named. Quotes, blanks, tabs and backslashes, also
 * refused by the API server, can be carried (escaped, iptables/comment.ts)
 * and are programmed, as upstream would program them.
 */
const UNCARRIABLE = /[\u0000-\u0008\u000a-\u001f\u007f]/;
export const hasUncarriableText = (s: string): boolean => UNCARRIABLE.test(s);
const uncarriable = (v: string): string => `contains a control character (${describeValue(v)}); no iptables rule can carry it`;

export const isPortNumber = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 65535;

export function serviceKey(namespace: string, name: string, portName: string): string {
  // join builds one flat string; a template literal keeps a tree of pieces (the key is kept per service port).
  return portName ? [namespace, '/', name, ':', portName].join('') : [namespace, '/', name].join('');
}

export interface ServicePortsOptions {
  /**
   * Feature gate AllowServiceExternalIPs (v1.36+, deprecated, default on): off, spec.externalIPs are not programmed,
   * as upstream's ServicePort then reports none (KEP-5707, #137293). Default true.
   */
  readonly externalIPs?: boolean;
}

export function servicePortsFor(svc: unknown, family: IPFamily, options: ServicePortsOptions = {}): ServicePortsResult {
  const problems: ObjectProblem[] = [];
  const ports: ServicePort[] = [];
  const { namespace, name, labels } = metadataOf(svc);
  const report: Report = (field, reason) => {
    problems.push({ kind: 'Service', namespace, name, field, reason });
    return null;
  };
  const skip = (field: string, reason: string): ServicePortsResult => {
    report(field, reason);
    return { ports, problems };
  };
  if (!isRecord(svc)) return skip('', `not an object (got ${describeValue(svc)})`);
  if (!name) return skip('metadata.name', 'missing');
  if (!namespace) return skip('metadata.namespace', 'missing');
  // kube-proxy's informers never see these (label selector): another proxy owns them.
  if (Object.hasOwn(labels, SERVICE_PROXY_NAME_LABEL) || Object.hasOwn(labels, HEADLESS_LABEL)) return { ports, problems };
  if (hasUncarriableText(namespace)) return skip('metadata.namespace', uncarriable(namespace));
  if (hasUncarriableText(name)) return skip('metadata.name', uncarriable(name));
  const spec = svc['spec'] ?? {};
  if (!isRecord(spec)) return skip('spec', `not an object (got ${describeValue(spec)})`);

  const rawType = stringField(spec, 'type');
  if (rawType === null) return skip('spec.type', `must be a string, got ${describeValue(spec['type'])}`);
  // Unset (or "", as older API servers wrote it) is the API default ClusterIP. Upstream skips
  // only ExternalName (ShouldSkipService); any other unknown type is proxied like ClusterIP.
  const type = rawType === '' ? 'ClusterIP' : rawType;
  if (type === 'ExternalName') return { ports, problems };
  const clusterIP = clusterIPFor(spec, family, report);
  if (clusterIP === null) return { ports, problems };

  const status = isRecord(svc['status']) ? svc['status'] : {};
  const common = serviceFields({ spec, status, type, family, report, externalIPs: options.externalIPs !== false });
  if (common === null) return { ports, problems };
  const rawPorts = spec['ports'] ?? [];
  if (!Array.isArray(rawPorts)) return skip('spec.ports', `must be a list, got ${describeValue(rawPorts)}`);
  // Upstream's service map is keyed by (port name, protocol): a later port replaces an earlier one.
  const byNameAndProtocol = new Map<string, { index: number; port: ServicePort }>();
  rawPorts.forEach((p: unknown, i: number) => {
    const f = `spec.ports[${i}]`;
    if (!isRecord(p)) return report(f, `not an object (got ${describeValue(p)})`);
    const portName = p['name'] ?? '';
    if (typeof portName !== 'string') return report(`${f}.name`, `must be a string, got ${describeValue(portName)}`);
    if (hasUncarriableText(portName)) return report(`${f}.name`, uncarriable(portName));
    const protocol = p['protocol'] ?? 'TCP';
    if (typeof protocol !== 'string' || !PROTOCOLS.includes(protocol)) {
      return report(`${f}.protocol`, `must be TCP, UDP or SCTP; got ${describeValue(protocol)}`);
    }
    const port = p['port'];
    if (!isPortNumber(port)) return report(`${f}.port`, `must be an integer from 1 to 65535; got ${describeValue(port)}`);
    // Upstream takes the node port from the port whatever the type (newBaseServiceInfo).
    const nodePort = p['nodePort'] ?? 0;
    if (nodePort !== 0 && !isPortNumber(nodePort)) {
      return report(`${f}.nodePort`, `must be an integer from 1 to 65535 (or 0 for none); got ${describeValue(nodePort)}`);
    }
    const id = `${portName}/${protocol}`;
    const earlier = byNameAndProtocol.get(id);
    if (earlier) {
      report(
        `spec.ports[${earlier.index}]`,
        `replaced by ${f} (same name ${JSON.stringify(portName)} and protocol ${protocol}); upstream keeps the last`,
      );
      byNameAndProtocol.delete(id);
    }
    byNameAndProtocol.set(id, {
      index: i,
      port: {
        key: serviceKey(namespace, name, portName),
        namespace,
        name,
        portName,
        protocol: protocol as Protocol,
        clusterIP,
        port,
        nodePort: nodePort as number,
        // Listed, not spread: fields added to a literal after its own live in a separate property array.
        externalIPs: common.externalIPs,
        loadBalancerVIPs: common.loadBalancerVIPs,
        loadBalancerSourceRanges: common.loadBalancerSourceRanges,
        sessionAffinityTimeout: common.sessionAffinityTimeout,
        externalPolicyLocal: common.externalPolicyLocal,
        internalPolicyLocal: common.internalPolicyLocal,
        healthCheckNodePort: common.healthCheckNodePort,
        trafficDistribution: common.trafficDistribution,
      },
    });
  });
  for (const { port } of byNameAndProtocol.values()) ports.push(port);
  return { ports, problems };
}

type CommonFields = Omit<ServicePort, 'key' | 'namespace' | 'name' | 'portName' | 'protocol' | 'clusterIP' | 'port' | 'nodePort'>;

/** Everything shared by the ports of one service; null when the service must be skipped. */
function serviceFields(o: {
  spec: Json;
  status: Json;
  type: string;
  family: IPFamily;
  report: Report;
  /** AllowServiceExternalIPs: when false the field is neither read nor programmed. */
  externalIPs: boolean;
}): CommonFields | null {
  const { spec, type, family, report } = o;
  // Upstream compares with the one value that matters: only "Local" is local (apiservice.ExternalPolicyLocal,
  // InternalPolicyLocal), only "ClientIP" is sticky; any other string means Cluster / None.
  const etp = stringField(spec, 'externalTrafficPolicy');
  const itp = stringField(spec, 'internalTrafficPolicy');
  const affinity = stringField(spec, 'sessionAffinity');
  for (const [key, value] of [
    ['externalTrafficPolicy', etp],
    ['internalTrafficPolicy', itp],
    ['sessionAffinity', affinity],
  ] as const) {
    if (value === null) return report(`spec.${key}`, `must be a string, got ${describeValue(spec[key])}`);
  }
  let sessionAffinityTimeout = 0;
  if (affinity === 'ClientIP') {
    const cfg = spec['sessionAffinityConfig'];
    const clientIP = isRecord(cfg) ? cfg['clientIP'] : undefined;
    const t = (isRecord(clientIP) ? clientIP['timeoutSeconds'] : undefined) ?? DEFAULT_AFFINITY_TIMEOUT;
    if (!Number.isInteger(t) || (t as number) < 1 || (t as number) > MAX_AFFINITY_TIMEOUT) {
      return report(
        'spec.sessionAffinityConfig.clientIP.timeoutSeconds',
        `must be an integer from 1 to ${MAX_AFFINITY_TIMEOUT}; got ${describeValue(t)}`,
      );
    }
    sessionAffinityTimeout = t as number;
  }

  const rawExternal = listOf(spec, 'spec', 'externalIPs', report);
  const externalIPs = o.externalIPs
    ? addressesOf(
        rawExternal.map((v, i) => [v, `spec.externalIPs[${i}]`] as const),
        family,
        report,
      )
    : [];
  const lb = o.status['loadBalancer'];
  const ingress: (readonly [unknown, string])[] = [];
  // Only VIP-style load balancers (ipMode unset or VIP) get rules; hostname-only entries have no IP.
  (isRecord(lb) ? listOf(lb, 'status.loadBalancer', 'ingress', report) : []).forEach((ing, i) => {
    if (!isRecord(ing) || ing['ip'] === undefined || ing['ip'] === '' || ing['ipMode'] === 'Proxy') return;
    ingress.push([ing['ip'], `status.loadBalancer.ingress[${i}].ip`]);
  });
  const loadBalancerVIPs = addressesOf(ingress, family, report);
  const loadBalancerSourceRanges: string[] = [];
  listOf(spec, 'spec', 'loadBalancerSourceRanges', report).forEach((v, i) => {
    const cidr = typeof v === 'string' ? parseCIDR(v) : null;
    if (!cidr) return report(`spec.loadBalancerSourceRanges[${i}]`, `not a CIDR: ${describeValue(v)}; entry ignored`);
    if (cidr.family === family && !loadBalancerSourceRanges.includes(cidr.text)) loadBalancerSourceRanges.push(cidr.text);
  });

  // Upstream apiservice.ExternallyAccessible: by type, or a ClusterIP service with externalIPs
  // (an unknown type is neither: its external IPs and node ports get rules, but eTP Local does not apply).
  const accessible = type === 'NodePort' || type === 'LoadBalancer' || (type === 'ClusterIP' && rawExternal.length > 0);
  const externalPolicyLocal = accessible && etp === 'Local';
  let healthCheckNodePort = 0;
  if (type === 'LoadBalancer' && externalPolicyLocal) {
    const hc = spec['healthCheckNodePort'] ?? 0;
    if (isPortNumber(hc)) healthCheckNodePort = hc;
    else
      report(
        'spec.healthCheckNodePort',
        `a LoadBalancer with externalTrafficPolicy Local needs one (integer 1-65535); got ${describeValue(hc)}; no health check is served`,
      );
  }
  const td = spec['trafficDistribution'];
  return {
    externalIPs: shared(externalIPs),
    loadBalancerVIPs: shared(loadBalancerVIPs),
    loadBalancerSourceRanges: shared(loadBalancerSourceRanges),
    sessionAffinityTimeout,
    externalPolicyLocal,
    internalPolicyLocal: itp === 'Local',
    healthCheckNodePort,
    trafficDistribution: typeof td === 'string' && td !== '' ? td : null,
  };
}

const NONE: readonly string[] = Object.freeze([]);
/** The list, or one shared empty list for all the services that have none (every service port keeps these). */
const shared = (list: readonly string[]): readonly string[] => (list.length === 0 ? NONE : list);

/** A string field's value ("" when unset); null when it is not a string (upstream could not decode the object). */
function stringField(obj: Json, key: string): string | null {
  const v = obj[key];
  if (v === undefined || v === null) return '';
  return typeof v === 'string' ? v : null;
}

function listOf(obj: Json, path: string, key: string, report: Report): unknown[] {
  return listField(obj, key, (why) => report(`${path}.${key}`, `${why}; ignored`));
}

/** Parses addresses, reporting bad ones; keeps this family's, normalised and de-duplicated. */
function addressesOf(entries: readonly (readonly [unknown, string])[], family: IPFamily, report: Report): string[] {
  const out: string[] = [];
  for (const [v, field] of entries) {
    const ip = typeof v === 'string' ? parseIP(v) : null;
    if (!ip) report(field, `not an IP address: ${describeValue(v)}; entry ignored`);
    else if (ip.family === family && !out.includes(ip.text)) out.push(ip.text);
  }
  return out;
}
