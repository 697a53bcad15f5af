/**
 * The tracer over a live generation B table (upstream v1.36+, nftables-mode.md §1.10), as `kube-proxy-ts trace`
 * reads it from `nft -j list table`: testdata/*-listing-b.json is what nft 1.0.6 listed (Linux 6.18) after loading
 * the shapes cluster's B render (shapes.case.ts). Every packet must fare as it does through the rendered table.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { IPFamily } from '../proxier/types.ts';
import type { TracePacket } from '../proxier/trace-result.ts';
import { parseNftJson } from './parse-json.ts';
import { renderNftables, tableOf } from './render.ts';
import { shapesOptions, shapesSnapshot } from './shapes.case.ts';
import { traceNft } from './trace.ts';
import { TEST_EXTERNAL_CLIENT, TEST_NODE_IP, TEST_NODE_IPS, TEST_NODE_IPV6 } from './upstream.case.ts';

const listing = (f: string) => readFileSync(new URL(`./testdata/${f}`, import.meta.url), 'utf8');

const FAMILIES = {
  IPv4: {
    file: 'ipv4-listing-b.json',
    nft: 'ip',
    c: (n: number) => `172.30.0.${n}`,
    ep: (n: number) => `10.180.0.${n}`,
    lb: '1.2.3.4',
    blocked: '203.0.113.130',
  },
  IPv6: {
    file: 'ipv6-listing-b.json',
    nft: 'ip6',
    c: (n: number) => `fd00:172:30::${n}`,
    ep: (n: number) => `fd00:10:180::${n}`,
    lb: '2001:db8:5::4',
    blocked: '2001:db8:204::1',
  },
} as const;

/** A packet's fate per branch: endpoint (or verdict) and whether it is masqueraded, sorted. */
function fate(t: Parameters<typeof traceNft>[0], p: TracePacket): { branches: string[]; warnings: readonly string[] } {
  const r = traceNft(t, p, { localAddresses: TEST_NODE_IPS });
  const branches = r.branches.map(
    (b) => `${b.verdict} ${b.dnat ? `${b.dnat.ip}:${b.dnat.port}` : '-'} masq=${b.masquerade} p=${b.probability.toFixed(4)}`,
  );
  return { branches: branches.sort(), warnings: r.warnings };
}

describe.each(['IPv4', 'IPv6'] as const)('generation B as nft 1.0.6 lists it (%s)', (family: IPFamily) => {
  const f = FAMILIES[family];
  const live = parseNftJson(listing(f.file), f.nft)!;
  const rendered = tableOf(renderNftables(shapesSnapshot(family), { ...shapesOptions(family), generation: 'B' }));
  const v4 = family === 'IPv4';
  const pod = v4 ? { src: '10.0.0.2' } : { src: 'fd00:10::2', inInterface: 'veth1' };
  const external = v4 ? TEST_EXTERNAL_CLIENT : '2001:db8:203::2';
  const node = v4 ? TEST_NODE_IP : TEST_NODE_IPV6;
  const tcp = (src: string, dst: string, dport: number, more: Partial<TracePacket> = {}): TracePacket => ({
    src,
    dst,
    protocol: 'TCP',
    dport,
    origin: TEST_NODE_IPS.includes(src) ? 'local' : 'external',
    ...more,
  });
  const flows: [string, TracePacket][] = [
    ['pod to ClusterIP', tcp(pod.src, f.c(41), 80, pod)],
    ['pod to ClusterIP, UDP', { ...tcp(pod.src, f.c(41), 53, pod), protocol: 'UDP' }],
    ['pod to ClusterIP, SCTP', { ...tcp(pod.src, f.c(41), 99, pod), protocol: 'SCTP' }],
    ['local endpoint to its own ClusterIP (hairpin)', tcp(f.ep(1), f.c(41), 80, v4 ? {} : { inInterface: 'veth1' })],
    ['external to ClusterIP', tcp(external, f.c(41), 80)],
    ['external to NodePort', tcp(external, node, 3001)],
    ['node to NodePort', tcp(node, node, 3001)],
    ['external in a source range to the LoadBalancer (eTP Local, ClientIP affinity: endpoint chains)', tcp(external, f.lb, 80)],
    ['external outside the source ranges to the LoadBalancer', tcp(f.blocked, f.lb, 80)],
    ['pod to iTP Local ClusterIP', tcp(pod.src, f.c(44), 80, pod)],
    ['pod to iTP Local ClusterIP without local endpoints', tcp(pod.src, f.c(45), 80, pod)],
    ['pod to a service without endpoints', tcp(pod.src, f.c(46), 80, pod)],
    ['pod to a bad port of a ClusterIP', tcp(pod.src, f.c(41), 81, pod)],
  ];

  it.each(flows)('%s: the live table gives what the render gives, without warnings', (_, packet) => {
    const want = fate(rendered, packet);
    const got = fate(live, packet);
    expect(want.warnings).toEqual([]);
    expect(got.warnings).toEqual([]);
    expect(got.branches).toEqual(want.branches);
  });

  it('forks the numgen map DNAT into every endpoint, 1/3 each (upstream writeServiceToEndpointDNATs)', () => {
    expect(fate(live, flows[0]![1]).branches).toEqual([1, 2, 3].map((n) => `ACCEPT ${f.ep(n)}:80 masq=false p=0.3333`));
  });

  it('masquerades the hairpin branch only, through @hairpin-connections (ct status dnat, addresses after DNAT)', () => {
    const r = traceNft(live, flows[3]![1], { localAddresses: TEST_NODE_IPS });
    expect(r.masquerade).toBe('mixed');
    const self = r.branches.find((b) => b.dnat?.ip === f.ep(1))!;
    expect(self.masquerade).toBe(true);
    expect(self.end).toBe(`accepted; DNAT by ${self.steps.find((s) => s.rule.includes('dnat'))!.chain} rule 1; masqueraded by masquerading rule 2`);
    expect(r.branches.filter((b) => b !== self).map((b) => b.masquerade)).toEqual([false, false]);
  });

  it("masquerades ClusterIP traffic from outside the cluster through the services chain's inline mark (masquerading rule 1)", () => {
    const r = traceNft(live, flows[4]![1], { localAddresses: TEST_NODE_IPS });
    expect(r.masquerade).toBe(true);
    for (const b of r.branches) {
      expect(b.steps.filter((s) => s.chain === 'services').map((s) => s.index)).toEqual([1, 2]);
      expect(b.end).toMatch(/masqueraded by masquerading rule 1$/);
    }
  });
});
