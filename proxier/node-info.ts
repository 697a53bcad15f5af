/**
 * The proxier's own Node object -> NodeInfo: its addresses (primary IP and
 * so the primary family), topology zone, pod CIDRs and whether it is going
 * away (deletion, cluster-autoscaler taint; both fail the health check).
 * Unparseable entries are skipped and reported; everything else is kept.
 */
import { ipFamilyOf, isUnspecified, parseCIDR, parseIP } from './ip.ts';
import type { NodeInfo, ObjectProblem } from './types.ts';
import { describeValue, isRecord, listField, metadataOf } from './raw.ts';

export const ZONE_LABEL = 'topology.kubernetes.io/zone';
export const TO_BE_DELETED_TAINT = 'ToBeDeletedByClusterAutoscaler';
const IP_ADDRESS_TYPES = ['InternalIP', 'ExternalIP'];

export interface NodeInfoOptions {
  /** --bind-address: a specific one is the node IP of its family, and that family the primary one. */
  readonly bindAddress?: string;
}

/** What is known before the Node object has been seen. */
export function unknownNode(nodeName: string, opts: NodeInfoOptions = {}): NodeInfo {
  return {
    name: nodeName,
    known: false,
    addresses: [],
    ...nodeIPs([], opts.bindAddress),
    labels: {},
    zone: null,
    podCIDRs: [],
    deleting: false,
    toBeDeletedByAutoscaler: false,
  };
}

/**
 * The node IPs as upstream's server.go detectNodeIPs picks them from GetNodeHostIPs: the InternalIPs, then the
 * ExternalIPs (each in the Node's order); the first is the primary one, the first of the other family the secondary one;
 * a specific --bind-address then replaces the node IP of its family and makes that family the primary one.
 */
export function nodeIPs(byType: readonly { type: string; ip: string }[], bindAddress = ''): Pick<NodeInfo, 'primaryIP' | 'secondaryIP'> {
  const sorted = [...byType.filter((a) => a.type === 'InternalIP'), ...byType.filter((a) => a.type === 'ExternalIP')].map((a) => a.ip);
  const primary = sorted[0] ?? null;
  const secondary = primary === null ? null : (sorted.find((ip) => ipFamilyOf(ip) !== ipFamilyOf(primary)) ?? null);
  const bind = parseIP(bindAddress);
  if (!bind || isUnspecified(bind)) return { primaryIP: primary, secondaryIP: secondary };
  const other = [primary, secondary].find((ip) => ip !== null && ipFamilyOf(ip) !== bind.family) ?? null;
  return { primaryIP: bind.text, secondaryIP: other };
}

export function nodeInfoFrom(node: unknown, nodeName: string, opts: NodeInfoOptions = {}): { node: NodeInfo; problems: ObjectProblem[] } {
  const problems: ObjectProblem[] = [];
  if (node === null || node === undefined) return { node: unknownNode(nodeName, opts), problems };
  const report = (field: string, reason: string): void => void problems.push({ kind: 'Node', namespace: '', name: nodeName, field, reason });
  if (!isRecord(node)) {
    report('', `not an object (got ${describeValue(node)})`);
    return { node: unknownNode(nodeName, opts), problems };
  }
  const spec = isRecord(node['spec']) ? node['spec'] : {};
  const status = isRecord(node['status']) ? node['status'] : {};

  const labels = { ...metadataOf(node).labels };

  const addresses: string[] = [];
  const byType: { type: string; ip: string }[] = [];
  listField(status, 'addresses').forEach((a, i) => {
    if (!isRecord(a) || !IP_ADDRESS_TYPES.includes(a['type'] as string)) return; // Hostname, InternalDNS...
    const ip = typeof a['address'] === 'string' ? parseIP(a['address']) : null;
    if (!ip) return report(`status.addresses[${i}].address`, `not an IP address: ${describeValue(a['address'])}; ignored`);
    byType.push({ type: a['type'] as string, ip: ip.text });
    if (!addresses.includes(ip.text)) addresses.push(ip.text);
  });

  const podCIDRs: string[] = [];
  const cidrList = Array.isArray(spec['podCIDRs']) && spec['podCIDRs'].length > 0;
  const rawCIDRs = cidrList ? listField(spec, 'podCIDRs') : spec['podCIDR'] ? [spec['podCIDR']] : [];
  rawCIDRs.forEach((c, i) => {
    const cidr = typeof c === 'string' ? parseCIDR(c) : null;
    if (!cidr) return report(cidrList ? `spec.podCIDRs[${i}]` : 'spec.podCIDR', `not a CIDR: ${describeValue(c)}; ignored`);
    if (!podCIDRs.includes(cidr.text)) podCIDRs.push(cidr.text);
  });

  const deletion = isRecord(node['metadata']) ? node['metadata']['deletionTimestamp'] : undefined;
  const taints = listField(spec, 'taints');
  return {
    node: {
      name: nodeName,
      known: true,
      addresses,
      ...nodeIPs(byType, opts.bindAddress),
      labels,
      zone: labels[ZONE_LABEL] || null,
      podCIDRs,
      deleting: deletion !== undefined && deletion !== null && deletion !== '',
      toBeDeletedByAutoscaler: taints.some((t) => isRecord(t) && t['key'] === TO_BE_DELETED_TAINT),
    },
    problems,
  };
}
