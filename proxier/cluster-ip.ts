/**
 * A Service's cluster IP for one IP family, as upstream reads it:
 * - ShouldSkipService (helper.IsServiceIPSet): a Service whose spec.clusterIP
 *   is unset, "" or "None" is not proxied at all, whatever spec.clusterIPs says;
 * - GetClusterIPByFamily: with spec.ipFamilies, the entry of spec.clusterIPs at
 *   the family's position; without (an object no API server defaulted), spec.clusterIP
 *   if it is of this family, and nothing else.
 * Where upstream silently programs nothing although the object names an IP
 * of this family, the reason is reported, so a hand-written file can be fixed.
 */
import { describeValue, type Report } from './raw.ts';
import { parseIP } from './ip.ts';
import type { IPFamily } from './types.ts';

type Json = Record<string, unknown>;

/** The normalised cluster IP of this family, or null (nothing to program for this family). */
export function clusterIPFor(spec: Json, family: IPFamily, report: Report): string | null {
  const single = spec['clusterIP'];
  if (single !== undefined && single !== null && typeof single !== 'string') {
    return report('spec.clusterIP', `must be a string, got ${describeValue(single)}`);
  }
  const list: unknown[] = Array.isArray(spec['clusterIPs']) ? spec['clusterIPs'] : [];
  if (!single || single === 'None') {
    const listed = list[0];
    if (!single && typeof listed === 'string' && listed !== '' && listed !== 'None') {
      report('spec.clusterIP', 'missing while spec.clusterIPs is set; upstream programs no Service without spec.clusterIP');
    }
    return null; // headless, or no IP allocated
  }
  const families = Array.isArray(spec['ipFamilies']) && spec['ipFamilies'].length > 0 ? (spec['ipFamilies'] as unknown[]) : null;
  if (!families) {
    const ip = parseIP(single);
    if (!ip) return report('spec.clusterIP', `not an IP address: ${describeValue(single)}`);
    if (ip.family === family) return ip.text;
    const i = list.findIndex((v) => typeof v === 'string' && parseIP(v)?.family === family);
    if (i >= 0)
      report(
        `spec.clusterIPs[${i}]`,
        `${parseIP(list[i] as string)!.text} not programmed: without spec.ipFamilies upstream proxies spec.clusterIP only`,
      );
    return null;
  }
  const i = families.indexOf(family);
  if (i < 0) return null;
  if (i >= list.length)
    return report('spec.clusterIPs', `has no entry for ${family} (spec.ipFamilies[${i}]); upstream reads cluster IPs from spec.clusterIPs`);
  const ip = typeof list[i] === 'string' ? parseIP(list[i]) : null;
  if (!ip) return report(`spec.clusterIPs[${i}]`, `not an IP address: ${describeValue(list[i])}`);
  if (ip.family !== family) return report(`spec.clusterIPs[${i}]`, `${ip.text} is not an ${family} address (spec.ipFamilies[${i}] is ${family})`);
  return ip.text;
}
