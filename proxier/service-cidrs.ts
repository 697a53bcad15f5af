/**
 * ServiceCIDR objects (networking.k8s.io/v1) -> the cluster's Service CIDRs
 * per IP family, which the nftables mode uses to drop traffic to ClusterIPs
 * no service holds (upstream ServiceCIDRConfig.handleServiceCIDREvent feeding
 * the nftables proxier's OnServiceCIDRsChanged). Pure.
 *
 * Better than upstream in two ways:
 * - the union is taken over every object each time, where upstream's set
 *   loses a CIDR that two objects list when one of them is deleted;
 * - a CIDR that does not parse is skipped and named, where upstream would
 *   put it in the ip6 rule (it is "not IPv4") and every transaction would
 *   then be refused. A CIDR with host bits set or in upper case (the API
 *   server refuses both) is used in its canonical form and named.
 */
import { parseCIDR } from './ip.ts';
import { describeValue, isRecord, listField, metadataOf } from './raw.ts';
import type { IPFamily, ObjectProblem } from './types.ts';

export interface ServiceCIDRs {
  readonly IPv4: readonly string[];
  readonly IPv6: readonly string[];
}

export const NO_SERVICE_CIDRS: ServiceCIDRs = { IPv4: [], IPv6: [] };

export function serviceCIDRsFrom(objects: Iterable<unknown>): { cidrs: ServiceCIDRs; problems: ObjectProblem[] } {
  const problems: ObjectProblem[] = [];
  const found: Record<IPFamily, Set<string>> = { IPv4: new Set(), IPv6: new Set() };
  for (const obj of objects) {
    const name = metadataOf(obj).name;
    const report = (field: string, reason: string): void => void problems.push({ kind: 'ServiceCIDR', namespace: '', name, field, reason });
    const spec = isRecord(obj) ? obj['spec'] : undefined;
    if (!isRecord(spec)) {
      report('spec', `must be an object, got ${describeValue(spec)}`);
      continue;
    }
    listField(spec, 'cidrs', (reason) => report('spec.cidrs', reason)).forEach((text, i) => {
      const field = `spec.cidrs[${i}]`;
      const cidr = typeof text === 'string' ? parseCIDR(text) : null;
      if (cidr === null || typeof text !== 'string' || text.trim() !== text) return report(field, `not a CIDR: ${describeValue(text)}; ignored`);
      if (cidr.text !== text) report(field, `${text} is not in canonical form; using ${cidr.text}`);
      found[cidr.family].add(cidr.text);
    });
  }
  return { cidrs: { IPv4: [...found.IPv4].sort(), IPv6: [...found.IPv6].sort() }, problems };
}
