/**
 * EndpointSlices -> the endpoints of one service port, as upstream's
 * EndpointSliceCache merges them. Slices are validated and indexed by
 * service once (problems are found there, once per slice), then merged per
 * service port: O(total endpoints), whatever the number of services.
 */
import { endpointString } from './types.ts';
import type { Endpoint, IPFamily, ObjectProblem, Protocol, ServicePort } from './types.ts';
import { isPortNumber } from './service-ports.ts';
import { describeValue, isRecord, listField, metadataOf, SERVICE_NAME_LABEL, sliceServiceKey, type Json } from './raw.ts';
import { parseIPText } from './ip.ts';

export interface SlicePort {
  readonly name: string;
  readonly protocol: Protocol;
  readonly port: number;
}

/** An endpoint as a slice states it, before it is paired with a port. */
export type SliceEndpoint = Omit<Endpoint, 'port' | 'isLocal'>;

export interface ParsedSlice {
  readonly namespace: string;
  readonly name: string;
  /** "namespace/service-name". */
  readonly serviceKey: string;
  readonly family: IPFamily;
  readonly ports: readonly SlicePort[];
  readonly endpoints: readonly SliceEndpoint[];
}

/** Validates one raw slice. slice is null when it has nothing for kube-proxy (FQDN) or is unusable. */
export function parseEndpointSlice(obj: unknown): { slice: ParsedSlice | null; problems: ObjectProblem[] } {
  const problems: ObjectProblem[] = [];
  const { namespace, name } = metadataOf(obj);
  const report = (field: string, reason: string): void => void problems.push({ kind: 'EndpointSlice', namespace, name, field, reason });
  const skip = (field: string, reason: string): { slice: null; problems: ObjectProblem[] } => {
    report(field, reason);
    return { slice: null, problems };
  };
  if (!isRecord(obj)) return skip('', `not an object (got ${describeValue(obj)})`);
  if (!name) return skip('metadata.name', 'missing');
  if (!namespace) return skip('metadata.namespace', 'missing');
  const serviceKey = sliceServiceKey(obj);
  if (serviceKey === null) return skip(`metadata.labels["${SERVICE_NAME_LABEL}"]`, 'missing: the slice belongs to no service');
  const addressType = obj['addressType'];
  if (addressType === 'FQDN') return { slice: null, problems };
  if (addressType !== 'IPv4' && addressType !== 'IPv6') return skip('addressType', `must be IPv4, IPv6 or FQDN; got ${describeValue(addressType)}`);

  const ports: SlicePort[] = [];
  listOf(obj, 'ports', report).forEach((p, i) => {
    const f = `ports[${i}]`;
    if (!isRecord(p)) return report(f, `not an object (got ${describeValue(p)})`);
    // Upstream's slice cache skips a port whose name is nil (absent or null) with an error log; the
    // EndpointSlice controller writes "" for a Service's unnamed port.
    const portName = p['name'];
    if (portName === undefined || portName === null)
      return report(`${f}.name`, 'missing (null); upstream ignores slice ports without a name ("" is the unnamed port)');
    if (typeof portName !== 'string') return report(`${f}.name`, `must be a string, got ${describeValue(portName)}`);
    const protocol = p['protocol'] ?? 'TCP';
    if (protocol !== 'TCP' && protocol !== 'UDP' && protocol !== 'SCTP')
      return report(`${f}.protocol`, `must be TCP, UDP or SCTP; got ${describeValue(protocol)}`);
    const port = p['port'] ?? 0;
    // Likewise a port without a number ("all ports" is not implemented upstream).
    if (port === 0) return report(`${f}.port`, 'missing (null or 0); upstream ignores slice ports without a number');
    if (!isPortNumber(port)) return report(`${f}.port`, `must be an integer from 1 to 65535; got ${describeValue(port)}`);
    ports.push({ name: portName, protocol, port });
  });

  const endpoints: SliceEndpoint[] = [];
  // The field path is built only for a problem (50,000 endpoints at 10,000 services have none).
  listOf(obj, 'endpoints', report).forEach((e, i) => {
    if (!isRecord(e)) return report(`endpoints[${i}]`, `not an object (got ${describeValue(e)})`);
    const addresses = e['addresses'];
    if (!Array.isArray(addresses) || addresses.length === 0)
      return report(`endpoints[${i}].addresses`, `must be a non-empty list; got ${describeValue(addresses)}`);
    const ip = typeof addresses[0] === 'string' ? parseIPText(addresses[0]) : null;
    if (!ip) return report(`endpoints[${i}].addresses[0]`, `not an IP address: ${describeValue(addresses[0])}`);
    if (ip.family !== addressType)
      return report(`endpoints[${i}].addresses[0]`, `${ip.text} is not an ${addressType} address (addressType is ${addressType})`);
    const c = e['conditions'];
    const conditions = isRecord(c) ? c : NONE;
    const h = e['hints'];
    const hints = isRecord(h) ? h : NONE;
    endpoints.push({
      ip: ip.text,
      ready: conditions['ready'] !== false,
      serving: conditions['serving'] !== false,
      terminating: conditions['terminating'] === true,
      nodeName: optionalString(e['nodeName']),
      zone: optionalString(e['zone']),
      zoneHints: hintNames(hints['forZones']),
      nodeHints: hintNames(hints['forNodes']),
    });
  });
  return { slice: { namespace, name, serviceKey, family: addressType, ports, endpoints }, problems };
}

export interface SliceIndex {
  /** Parsed slices of the service "namespace/name", sorted by slice name. */
  forService(serviceKey: string): readonly ParsedSlice[];
  readonly problems: readonly ObjectProblem[];
}

/** Parses and groups every slice by service once. A slice name seen twice: the last one wins. */
export function indexEndpointSlices(slices: readonly unknown[]): SliceIndex {
  const problems: ObjectProblem[] = [];
  const byName = new Map<string, ParsedSlice>();
  for (const raw of slices) {
    const { slice, problems: found } = parseEndpointSlice(raw);
    problems.push(...found);
    if (!slice) continue;
    const id = `${slice.namespace}/${slice.name}`;
    if (byName.has(id)) {
      problems.push({
        kind: 'EndpointSlice',
        namespace: slice.namespace,
        name: slice.name,
        field: '',
        reason: 'defined more than once; the last definition is used',
      });
      byName.delete(id);
    }
    byName.set(id, slice);
  }
  const byService = new Map<string, ParsedSlice[]>();
  for (const slice of byName.values()) {
    const list = byService.get(slice.serviceKey);
    if (list) list.push(slice);
    else byService.set(slice.serviceKey, [slice]);
  }
  for (const list of byService.values()) list.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { forService: (key) => byService.get(key) ?? [], problems };
}

export interface EndpointContext {
  readonly nodeName: string;
  readonly family: IPFamily;
}

/**
 * The endpoints of one service port over the given slices of its service:
 * slice ports matching the port's name and protocol, this family only,
 * de-duplicated by "ip:port" and sorted by it. Of duplicates (an endpoint
 * moving between slices, or a pod IP reused while the old pod terminates)
 * a non-terminating one wins, then a local one, then the first by slice name.
 */
export function mergeEndpoints(slices: readonly ParsedSlice[], sp: ServicePort, ctx: EndpointContext): Endpoint[] {
  const seen = new Map<string, Endpoint>();
  for (const slice of slices) {
    if (slice.family !== ctx.family) continue;
    for (const port of slice.ports) {
      if (port.name !== sp.portName || port.protocol !== sp.protocol) continue;
      for (const e of slice.endpoints) {
        // Every field in one literal: a spread plus added fields gives an object whose later fields live in a
        // separate property array (40 B more per endpoint, 2 MB at 50,000 endpoints).
        const ep: Endpoint = {
          ip: e.ip,
          port: port.port,
          ready: e.ready,
          serving: e.serving,
          terminating: e.terminating,
          nodeName: e.nodeName,
          zone: e.zone,
          isLocal: ctx.nodeName !== '' && e.nodeName === ctx.nodeName,
          zoneHints: e.zoneHints,
          nodeHints: e.nodeHints,
        };
        const key = endpointString(ep);
        const old = seen.get(key);
        if (!old || better(ep, old)) seen.set(key, ep);
      }
    }
  }
  const keyed = [...seen].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return keyed.map((kv) => kv[1]);
}

function better(a: Endpoint, b: Endpoint): boolean {
  if (a.terminating !== b.terminating) return !a.terminating;
  return a.isLocal && !b.isLocal;
}

/** Convenience over raw slices (any services): parse, keep the service port's own, merge. */
export function endpointsFor(
  slices: readonly unknown[],
  sp: ServicePort,
  ctx: EndpointContext,
): { endpoints: Endpoint[]; problems: ObjectProblem[] } {
  const index = indexEndpointSlices(slices);
  return { endpoints: mergeEndpoints(index.forService(`${sp.namespace}/${sp.name}`), sp, ctx), problems: [...index.problems] };
}

const NONE: Json = Object.freeze({});

function listOf(obj: Json, key: string, report: (field: string, reason: string) => void): unknown[] {
  return listField(obj, key, (why) => report(key, why));
}

function optionalString(v: unknown): string | null {
  return typeof v === 'string' && v !== '' ? v : null;
}

/** hints.forZones / forNodes names; null when there are none (upstream: an empty set). */
function hintNames(v: unknown): string[] | null {
  if (!Array.isArray(v)) return null;
  const names = v.flatMap((h: unknown) => (isRecord(h) && typeof h['name'] === 'string' ? [h['name']] : []));
  return names.length > 0 ? names : null;
}
