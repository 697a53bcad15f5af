/**
 * The cluster `render`, `diff` and `trace --mode=nftables` are tested on
 * (test/cli-nftables.test.ts with the fake nft, test/cli-nftables.e2e.test.ts
 * in namespaces): the flow table's address plan (test/flow-cases.case.ts),
 * one service of each shape the diff must attribute (a dual-stack NodePort,
 * one without endpoints, eTP Local without local endpoints, ClientIP
 * affinity, source ranges), the cluster's ServiceCIDR, and the flows traced.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump } from 'js-yaml';
import { makeEndpointSlice, makeService, makeServiceCIDR } from './builders.ts';
import { CLIENT, CLIENT_6, NODE1, nodes, PODS, TARGET_PORT, type PodName } from './flow-cases.case.ts';

export const NFT_FLAGS = ['--mode=nftables', '--hostname-override=node-1', '--cluster-cidr=10.244.0.0/16,fd00:10:244::/56'] as const;

const port80 = (over: Record<string, unknown> = {}) => [{ name: 'p80', port: 80, targetPort: TARGET_PORT, protocol: 'TCP', ...over }];

function slice(svc: string, pods: readonly PodName[], family: 'IPv4' | 'IPv6' = 'IPv4'): unknown {
  return makeEndpointSlice('ns1', svc, {
    endpoints: pods.map((p) => ({ ip: family === 'IPv4' ? PODS[p].ip : PODS[p].ip6, nodeName: PODS[p].node })),
    ports: [{ name: 'p80', port: TARGET_PORT }],
  });
}

export function cliObjects(): unknown[] {
  return [
    ...nodes(),
    makeServiceCIDR('kubernetes', ['172.30.0.0/16', 'fd00:172:30::/112']),
    makeService('ns1', 'web', { type: 'NodePort', clusterIPs: ['172.30.0.10', 'fd00:172:30::10'], ports: port80({ nodePort: 30080 }) }),
    slice('web', ['pod-a', 'pod-c']),
    slice('web', ['pod-a', 'pod-c'], 'IPv6'),
    makeService('ns1', 'none', { clusterIP: '172.30.0.20', ports: port80() }),
    makeService('ns1', 'local', {
      type: 'LoadBalancer',
      clusterIP: '172.30.0.30',
      loadBalancerIP: '203.0.113.30',
      externalTrafficPolicy: 'Local',
      healthCheckNodePort: 32090,
      ports: port80({ nodePort: 30090 }),
    }),
    slice('local', ['pod-c']),
    makeService('ns1', 'sticky', { clusterIP: '172.30.0.40', ports: port80(), sessionAffinity: 'ClientIP', sessionAffinityTimeout: 600 }),
    slice('sticky', ['pod-a', 'pod-b']),
    makeService('ns1', 'fw', {
      type: 'LoadBalancer',
      clusterIP: '172.30.0.50',
      loadBalancerIP: '203.0.113.50',
      loadBalancerSourceRanges: ['192.168.50.128/25'],
      ports: port80({ nodePort: 30091 }),
    }),
    slice('fw', ['pod-b']),
  ];
}

/** The objects as a manifest file in a fresh temporary directory. */
export async function writeCliObjects(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kpt-nft-cli-'));
  const file = join(dir, 'objects.yaml');
  await writeFile(
    file,
    cliObjects()
      .map((o) => dump(o))
      .join('---\n'),
  );
  return file;
}

export interface CliFlow {
  readonly name: string;
  /** Where the packet is sent from (namespace harness names). */
  readonly from: 'client' | 'pod-a';
  readonly src: string;
  readonly dst: string;
  readonly ip: string;
  readonly port: number;
  /** What the trace must say and the kernel must do. */
  readonly expect: readonly PodName[] | 'REJECT' | 'DROP';
  readonly masquerade?: boolean;
}

export const CLI_FLOWS: readonly CliFlow[] = [
  { name: 'client -> ClusterIP', from: 'client', src: CLIENT, dst: '172.30.0.10:80', ip: '172.30.0.10', port: 80, expect: ['pod-a', 'pod-c'] },
  {
    name: 'client -> NodePort, masqueraded',
    from: 'client',
    src: CLIENT,
    dst: `${NODE1}:30080`,
    ip: NODE1,
    port: 30080,
    expect: ['pod-a', 'pod-c'],
    masquerade: true,
  },
  {
    name: 'pod -> ClusterIP without endpoints',
    from: 'pod-a',
    src: PODS['pod-a'].ip,
    dst: '172.30.0.20:80',
    ip: '172.30.0.20',
    port: 80,
    expect: 'REJECT',
  },
  {
    name: 'client -> eTP Local LB without local endpoints',
    from: 'client',
    src: CLIENT,
    dst: '203.0.113.30:80',
    ip: '203.0.113.30',
    port: 80,
    expect: 'DROP',
  },
  {
    name: 'pod -> unallocated address of the ServiceCIDR',
    from: 'pod-a',
    src: PODS['pod-a'].ip,
    dst: '172.30.0.99:80',
    ip: '172.30.0.99',
    port: 80,
    expect: 'DROP',
  },
  { name: 'client -> LB in its source ranges', from: 'client', src: CLIENT, dst: '203.0.113.50:80', ip: '203.0.113.50', port: 80, expect: ['pod-b'] },
  {
    name: 'client -> IPv6 ClusterIP',
    from: 'client',
    src: CLIENT_6,
    dst: '[fd00:172:30::10]:80',
    ip: 'fd00:172:30::10',
    port: 80,
    expect: ['pod-a', 'pod-c'],
  },
];

/** The endpoint address a pod answers on, as the trace prints it. */
export function endpointOf(pod: PodName, family: 'IPv4' | 'IPv6'): string {
  return family === 'IPv4' ? `${PODS[pod].ip}:${TARGET_PORT}` : `[${PODS[pod].ip6}]:${TARGET_PORT}`;
}

/** "Verdict:", "Endpoints:" and the masquerade answer of a `trace` output. */
export function traceSummary(out: string): { verdict: string; endpoints: string[]; masquerade: string } {
  const m = /^Verdict: (\S+); masquerade: (.+)$/m.exec(out);
  const e = /^Endpoints: (.+)$/m.exec(out);
  if (!m || !e) throw new Error(`not a trace output:\n${out}`);
  return { verdict: m[1]!, masquerade: m[2]!, endpoints: e[1]!.startsWith('(none') ? [] : e[1]!.split(', ').sort() };
}
