/**
 * The cluster both modes are measured on (bench/modes-side-by-side.ts): N
 * services with one ClusterIP port and 5 endpoints each in one EndpointSlice,
 * the first endpoint on this node, local-traffic detection by cluster CIDR.
 * The same generator as bench/iptables-sync.ts and bench/nftables-core.ts, so
 * the figures describe the same clusters.
 */
import { buildSnapshots } from '../proxier/snapshot.ts';
import type { Snapshot } from '../proxier/types.ts';
import { makeEndpointSlice, makeNode, makeService } from '../test/builders.ts';

export const NODE = 'bench-node';
export const FEATURES = { preferSameTrafficDistribution: true };
export const DETECT_LOCAL = { mode: 'ClusterCIDR', clusterCIDRs: ['10.0.0.0/8'], bridgeInterface: '', interfaceNamePrefix: '' } as const;

type Json = Record<string, unknown>;

export interface BenchCluster {
  readonly n: number;
  readonly services: Json[];
  /** Replaced in place by endpointEvent(), as an informer's cache would be. */
  readonly slices: Json[];
  readonly node: Json;
}

export function makeCluster(n: number): BenchCluster {
  const services: Json[] = [];
  const slices: Json[] = [];
  for (let i = 0; i < n; i++) {
    services.push(
      makeService('bench', `svc-${i}`, {
        clusterIP: `172.${20 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`,
        ports: [{ name: 'p80', port: 80, targetPort: 8080 }],
      }),
    );
    slices.push(
      makeEndpointSlice('bench', `svc-${i}`, `svc-${i}-slice`, {
        endpoints: Array.from({ length: 5 }, (_, j) => ({ ip: `10.${(i >> 8) & 255}.${i & 255}.${j + 1}`, nodeName: j === 0 ? NODE : 'other' })),
        ports: [{ name: 'p80', port: 8080 }],
      }),
    );
  }
  return { n, services, slices, node: makeNode(NODE, { addresses: ['192.168.0.2'] }) };
}

export function snapshotOf(c: BenchCluster): Snapshot {
  return buildSnapshots({ services: c.services, slices: c.slices, node: c.node }, { nodeName: NODE, features: FEATURES, families: ['IPv4'] })
    .snapshots[0]!;
}

/**
 * `base` with one service port's first endpoint gone (the one at the middle
 * of the list): every other service port keeps its very object, as the
 * proxier's state builder keeps unchanged ones, so render caches see one change.
 */
export function withoutOneEndpoint(base: Snapshot): Snapshot {
  return withoutFirstEndpoint(base, Math.floor(base.services.length / 2));
}

/** The snapshot with service `i`'s first endpoint gone. */
export function withoutFirstEndpoint(snapshot: Snapshot, i: number): Snapshot {
  const services = snapshot.services.map((s, k) =>
    k === i
      ? {
          ...s,
          endpoints: s.endpoints.slice(1),
          selection: { ...s.selection, cluster: s.selection.cluster!.slice(1), allReachable: s.selection.allReachable.slice(1) },
        }
      : s,
  );
  return { ...snapshot, services };
}

/** The e-th endpoint event: one slice gets a new address for its second endpoint. Returns the informer update. */
export function endpointEvent(c: BenchCluster, e: number): { key: string; old: Json; obj: Json } {
  const i = (e * 7919) % c.n;
  const old = c.slices[i]!;
  const endpoints = old['endpoints'] as { addresses: string[] }[];
  const obj = { ...old, endpoints: endpoints.map((ep, j) => (j === 1 ? { ...ep, addresses: [`10.250.${e & 255}.${(e >> 8) + 1}`] } : ep)) };
  c.slices[i] = obj;
  return { key: `bench/svc-${i}-slice`, old, obj };
}
