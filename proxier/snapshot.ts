/**
 * Cluster objects -> the desired Snapshot of every IP family: each service
 * port with its merged endpoints and its endpoint selection. Mode-independent
 * and pure. servicePortStates() is the per-service step, which the proxier's
 * state builder (state-builder.ts) runs for the services that changed.
 *
 * Which families get a snapshot (unless the caller says): the node's primary
 * family (IPv4 while the Node or its addresses are unknown), plus any other
 * family in which some service has a cluster IP. So a single-stack cluster
 * yields one snapshot and a dual-stack one two, primary family first.
 * (Upstream runs both families whenever both iptables binaries work; a caller
 * that wants that passes `families`.)
 */
import { indexEndpointSlices, mergeEndpoints, type SliceIndex } from './endpoint-slices.ts';
import { ipFamilyOf } from './ip.ts';
import { nodeInfoFrom } from './node-info.ts';
import { servicePortsFor, type ServicePortsOptions } from './service-ports.ts';
import { categorizeEndpoints, type TopologyFeatures } from './topology.ts';
import { formatProblem } from './types.ts';
import type { IPFamily, NodeInfo, ObjectProblem, ServicePort, ServicePortState, Snapshot } from './types.ts';
import { metadataOf } from './raw.ts';
import { serviceCIDRsFrom } from './service-cidrs.ts';

export interface SnapshotObjects {
  readonly services: readonly unknown[];
  readonly slices: readonly unknown[];
  /** This proxier's own Node object, or null when it has not been seen. */
  readonly node: unknown;
  /** ServiceCIDR objects (none when absent). */
  readonly serviceCIDRs?: readonly unknown[];
}

export interface SnapshotOptions {
  readonly nodeName: string;
  /** Exactly these families, in this order; default: see the header comment. */
  readonly families?: readonly IPFamily[];
  readonly features: TopologyFeatures;
  /** --bind-address (a specific one is the node IP of its family: nodeInfoFrom). */
  readonly bindAddress?: string;
}

export interface StateContext {
  readonly family: IPFamily;
  readonly node: NodeInfo;
  readonly slices: SliceIndex;
  readonly features: TopologyFeatures;
}

/** The order of one Service's ports in a snapshot: by service port key, then protocol. */
export function compareServicePorts(a: ServicePort, b: ServicePort): number {
  if (a.key !== b.key) return a.key < b.key ? -1 : 1;
  return a.protocol < b.protocol ? -1 : a.protocol > b.protocol ? 1 : 0;
}

/**
 * Snapshot order: by Service ("namespace/name"), then compareServicePorts. The agent's proxier keeps its states by
 * Service and sorts those keys; the port keys alone sort "ns/web-admin:http" before "ns/web:http", and the two paths
 * would write KUBE-SERVICES (and the rules `render` prints) in different orders.
 */
function bySnapshotOrder(
  a: { readonly service: string; readonly port: ServicePort },
  b: { readonly service: string; readonly port: ServicePort },
): number {
  if (a.service !== b.service) return a.service < b.service ? -1 : 1;
  return compareServicePorts(a.port, b.port);
}

const portsOptions = (features: TopologyFeatures): ServicePortsOptions => ({ externalIPs: features.allowServiceExternalIPs !== false });

/** One service port with its endpoints (from the slice index) and their categorisation. */
export function servicePortState(service: ServicePort, ctx: StateContext): ServicePortState {
  const endpoints = mergeEndpoints(ctx.slices.forService(`${service.namespace}/${service.name}`), service, {
    nodeName: ctx.node.name,
    family: ctx.family,
  });
  return { service, endpoints, selection: categorizeEndpoints(endpoints, service, ctx.node, ctx.features) };
}

/** Every state one raw Service contributes to one family's snapshot, in snapshot order. */
export function servicePortStates(svc: unknown, ctx: StateContext): { states: ServicePortState[]; problems: ObjectProblem[] } {
  const { ports, problems } = servicePortsFor(svc, ctx.family, portsOptions(ctx.features));
  return { states: ports.sort(compareServicePorts).map((sp) => servicePortState(sp, ctx)), problems };
}

export function buildSnapshots(objects: SnapshotObjects, opts: SnapshotOptions): { snapshots: Snapshot[]; problems: ObjectProblem[] } {
  const problems = new ProblemList();
  const { node, problems: nodeProblems } = nodeInfoFrom(objects.node, opts.nodeName, opts.bindAddress ? { bindAddress: opts.bindAddress } : {});
  problems.add(nodeProblems);
  const slices = indexEndpointSlices(objects.slices);

  const candidates: readonly IPFamily[] = opts.families ?? ['IPv4', 'IPv6'];
  const portsByFamily = new Map<IPFamily, { service: string; port: ServicePort }[]>(candidates.map((f) => [f, []]));
  for (const svc of latestServices(objects.services, problems)) {
    for (const family of candidates) {
      const found = servicePortsFor(svc, family, portsOptions(opts.features));
      problems.add(found.problems);
      for (const port of found.ports) portsByFamily.get(family)!.push({ service: `${port.namespace}/${port.name}`, port });
    }
  }
  problems.add(slices.problems);

  const primary: IPFamily = (node.primaryIP && ipFamilyOf(node.primaryIP)) || 'IPv4';
  const other: IPFamily = primary === 'IPv4' ? 'IPv6' : 'IPv4';
  const families = opts.families ?? (portsByFamily.get(other)!.length > 0 ? [primary, other] : [primary]);
  const cidrs = serviceCIDRsFrom(objects.serviceCIDRs ?? []);
  problems.add(cidrs.problems);
  const snapshots = families.map((family): Snapshot => {
    const ctx: StateContext = { family, node, slices, features: opts.features };
    const ports = portsByFamily
      .get(family)!
      .sort(bySnapshotOrder)
      .map((x) => x.port);
    const serviceCIDRs = cidrs.cidrs[family];
    return { family, node, services: ports.map((sp) => servicePortState(sp, ctx)), ...(serviceCIDRs.length > 0 ? { serviceCIDRs } : {}) };
  });
  return { snapshots, problems: problems.list };
}

/**
 * Services by "namespace/name"; one defined twice (say in two files) is
 * reported and its last definition used, as `kubectl apply` would leave it.
 * Objects without a usable name are passed on so that their problem is reported.
 */
function latestServices(services: readonly unknown[], problems: ProblemList): unknown[] {
  const byKey = new Map<string, unknown>();
  const unnamed: unknown[] = [];
  for (const svc of services) {
    const md = metadataOf(svc);
    if (!md.name || !md.namespace) {
      unnamed.push(svc);
      continue;
    }
    const key = `${md.namespace}/${md.name}`;
    if (byKey.has(key)) {
      problems.add([
        { kind: 'Service', namespace: md.namespace, name: md.name, field: '', reason: 'defined more than once; the last definition is used' },
      ]);
      byKey.delete(key);
    }
    byKey.set(key, svc);
  }
  return [...byKey.values(), ...unnamed];
}

/** Problems in first-seen order without repeats (a bad field is seen once per family). */
class ProblemList {
  readonly list: ObjectProblem[] = [];
  private readonly seen = new Set<string>();

  add(problems: readonly ObjectProblem[]): void {
    for (const p of problems) {
      const text = formatProblem(p);
      if (this.seen.has(text)) continue;
      this.seen.add(text);
      this.list.push(p);
    }
  }
}
