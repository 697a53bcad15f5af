/**
 * One cluster with every rule shape the renderer writes, in either family:
 * ClusterIP with several endpoints, UDP and SCTP ports, NodePort, externalIPs,
 * LoadBalancer with eTP Local, ClientIP affinity and source ranges that
 * include the node (so the VIP is allowed too), iTP Local with and without
 * local endpoints, a service without endpoints. IPv4 detects pods by CIDR and
 * keeps NodePorts on nodeport-ips; IPv6 detects them by interface prefix and
 * accepts NodePorts on every local address (fib). The testdata/*-listing.json
 * files are what nft 1.0.6 listed after loading this render (Linux 6.18).
 */
import type { Endpoint, IPFamily, Snapshot } from '../proxier/types.ts';
import { makeEndpointSlice, makeService } from '../test/builders.ts';
import type { NftRenderOptions } from './render.ts';
import { TEST_NODE, upstreamOptions, upstreamSnapshot } from './upstream.case.ts';

const A = {
  IPv4: {
    c: (n: number) => `172.30.0.${n}`,
    ep: (n: number) => `10.180.0.${n}`,
    ext: '192.168.99.22',
    lb: '1.2.3.4',
    range: '192.168.0.0/24',
    range2: '203.0.113.0/25',
  },
  IPv6: {
    c: (n: number) => `fd00:172:30::${n}`,
    ep: (n: number) => `fd00:10:180::${n}`,
    ext: '2001:db8:99::22',
    lb: '2001:db8:5::4',
    range: '2001:db8::/64',
    range2: '2001:db8:203::/64',
  },
};

export function shapesSnapshot(family: IPFamily): Snapshot {
  const a = A[family];
  const p = (name: string, port: number, more: Record<string, unknown> = {}) => ({ name, port, ...more });
  const services = [
    makeService('ns1', 'web', {
      clusterIPs: [a.c(41)],
      ports: [p('p80', 80), p('dns', 53, { protocol: 'UDP' }), p('sctp', 99, { protocol: 'SCTP' })],
    }),
    makeService('ns1', 'np', { clusterIPs: [a.c(42)], type: 'NodePort', ports: [p('p80', 80, { nodePort: 3001 })], externalIPs: [a.ext] }),
    makeService('ns1', 'lb', {
      clusterIPs: [a.c(43)],
      type: 'LoadBalancer',
      externalTrafficPolicy: 'Local',
      healthCheckNodePort: 30000,
      ports: [p('p80', 80, { nodePort: 3002 })],
      ingress: [{ ip: a.lb }],
      loadBalancerSourceRanges: [a.range, a.range2],
      sessionAffinity: 'ClientIP',
      sessionAffinityTimeout: 600,
    }),
    makeService('ns1', 'itp', { clusterIPs: [a.c(44)], internalTrafficPolicy: 'Local', ports: [p('p80', 80)] }),
    makeService('ns1', 'itp-none', { clusterIPs: [a.c(45)], internalTrafficPolicy: 'Local', ports: [p('p80', 80)] }),
    makeService('ns1', 'empty', { clusterIPs: [a.c(46)], type: 'NodePort', ports: [p('p80', 80, { nodePort: 3003 })] }),
  ];
  const ports = (list: { name: string; port: number; protocol?: string }[]) => list.map((x) => ({ protocol: 'TCP', ...x }));
  const eps = (svc: string, list: [number, boolean][], pl = ports([{ name: 'p80', port: 80 }])) =>
    makeEndpointSlice('ns1', svc, {
      endpoints: list.map(([n, local]) => ({ ip: a.ep(n), ...(local ? { nodeName: TEST_NODE } : { nodeName: 'other' }) })),
      ports: pl,
    });
  const slices = [
    eps(
      'web',
      [
        [1, true],
        [2, false],
        [3, false],
      ],
      ports([
        { name: 'p80', port: 80 },
        { name: 'dns', port: 53, protocol: 'UDP' },
        { name: 'sctp', port: 99, protocol: 'SCTP' },
      ]),
    ),
    eps('np', [[4, false]]),
    eps('lb', [
      [5, true],
      [6, false],
    ]),
    eps('itp', [
      [7, true],
      [8, false],
    ]),
    eps('itp-none', [[9, false]]),
  ];
  return upstreamSnapshot(family, services, slices);
}

export function shapesOptions(family: IPFamily): NftRenderOptions {
  return family === 'IPv4'
    ? upstreamOptions('IPv4')
    : upstreamOptions('IPv6', {
        detectLocal: { mode: 'InterfaceNamePrefix', clusterCIDRs: [], bridgeInterface: '', interfaceNamePrefix: 'veth' },
        nodePortAddresses: ['::/0'],
      });
}

/** The first service port whose first reachable endpoint is local (and that has a cluster selection), and that endpoint. */
export function firstLocalEndpoint(snapshot: Snapshot): { index: number; endpoint: Endpoint } {
  const index = snapshot.services.findIndex((s) => s.selection.allReachable[0]?.isLocal === true && s.selection.cluster !== null);
  if (index < 0) throw new Error('no service port with a local endpoint first');
  return { index, endpoint: snapshot.services[index]!.selection.allReachable[0]! };
}

/** Service port `i` without endpoint `gone`, in every list of its selection (other ports keep their objects). */
export function withoutEndpoint(snapshot: Snapshot, i: number, gone: Endpoint): Snapshot {
  const drop = <T>(list: readonly T[] | null) => (list === null ? null : list.filter((e) => e !== gone));
  const services = snapshot.services.map((s, k) =>
    k !== i
      ? s
      : {
          ...s,
          endpoints: s.endpoints.filter((e) => e !== gone),
          selection: {
            ...s.selection,
            cluster: drop(s.selection.cluster),
            local: drop(s.selection.local),
            allReachable: drop(s.selection.allReachable)!,
          },
        },
  );
  return { ...snapshot, services };
}
