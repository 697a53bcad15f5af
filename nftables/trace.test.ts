import { describe, expect, it } from 'vitest';
import type { IPFamily } from '../proxier/types.ts';
import type { NftGeneration } from './objects.ts';
import { makeEndpointSlice, makeService, makeServiceCIDR } from '../test/builders.ts';
import { renderNftables, tableOf, type NftRenderOptions } from './render.ts';
import { checkFlow, runFlow, type PacketFlowTest } from './trace.case.ts';
import { traceNft } from './trace.ts';
import {
  TEST_EXTERNAL_CLIENT as EXT,
  TEST_EXTERNAL_CLIENT_BLOCKED as BLOCKED,
  TEST_NODE,
  TEST_NODE_IP as NODE,
  TEST_NODE_IP_ALT,
  TEST_NODE_IPV6,
  TEST_NODE_IPV6_ALT,
  applied,
  upstreamOptions,
  upstreamSnapshot,
} from './upstream.case.ts';

type Ep = { ip: string; nodeName?: string; ready?: boolean; serving?: boolean; terminating?: boolean };
const slice = (ns: string, svc: string, endpoints: Ep[], ports: { name: string; port: number; protocol?: string }[] = [{ name: 'p80', port: 80 }]) =>
  makeEndpointSlice(ns, svc, { endpoints, ports: ports.map((p) => ({ protocol: 'TCP', ...p })) });

function table(services: unknown[], slices: unknown[], family: IPFamily = 'IPv4', over: Partial<NftRenderOptions> = {}) {
  return tableOf(renderNftables(upstreamSnapshot(family, services, slices), upstreamOptions(family, over)));
}

/** Upstream's generation A ruleset and its v1.36+ generation B (nftables-mode.md §1.10): every flow must fare the same. */
const GENERATIONS: readonly NftGeneration[] = ['A', 'B'];

function run(t: ReturnType<typeof table>, flows: readonly PacketFlowTest[]) {
  for (const f of flows) checkFlow(t, f);
}

describe('ServiceCIDRs as the kernel lists them', () => {
  it('drops traffic to the unallocated addresses of ServiceCIDRs the kernel merged into a range, and no further', async () => {
    const cidrs = [makeServiceCIDR('a', ['10.200.0.0/24']), makeServiceCIDR('b', ['10.200.1.0/25'])];
    const fake = await applied(upstreamSnapshot('IPv4', [], [], cidrs), upstreamOptions('IPv4'));
    const live = (await fake.list('ip'))!;
    expect(live.chains.find((c) => c.name === 'cluster-ips-check')!.rules).toContain(
      'ip daddr 10.200.0.0-10.200.1.127 drop comment "Drop traffic to unallocated ClusterIPs"',
    );
    checkFlow(live, { name: 'pod to the range', sourceIP: '10.0.0.2', destIP: '10.200.1.100', destPort: 80, output: 'DROP' });
    checkFlow(live, { name: 'pod past the range', sourceIP: '10.0.0.2', destIP: '10.200.1.128', destPort: 80, output: '' });
  });
});

describe.each(GENERATIONS)('upstream nftables packet-flow tests through the tracer, generation %s', (generation) => {
  const table = (services: unknown[], slices: unknown[], family: IPFamily = 'IPv4', over: Partial<NftRenderOptions> = {}) =>
    tableOf(renderNftables(upstreamSnapshot(family, services, slices), upstreamOptions(family, { generation, ...over })));

  it('TestNoEndpointsReject: every address of a service without endpoints rejects', () => {
    const t = table(
      [
        makeService('ns1', 'svc1', {
          type: 'LoadBalancer',
          clusterIP: '172.30.0.41',
          externalIPs: ['192.168.99.11'],
          ports: [{ name: 'p80', port: 80, nodePort: 3001 }],
          ingress: [{ ip: '1.2.3.4' }],
        }),
      ],
      [],
    );
    run(t, [
      { name: 'pod to cluster IP', sourceIP: '10.0.0.2', destIP: '172.30.0.41', destPort: 80, output: 'REJECT' },
      { name: 'external to external IP', sourceIP: EXT, destIP: '192.168.99.11', destPort: 80, output: 'REJECT' },
      { name: 'pod to NodePort', sourceIP: '10.0.0.2', destIP: NODE, destPort: 3001, output: 'REJECT' },
      { name: 'external to NodePort', sourceIP: EXT, destIP: NODE, destPort: 3001, output: 'REJECT' },
      { name: 'pod to LoadBalancer IP', sourceIP: '10.0.0.2', destIP: '1.2.3.4', destPort: 80, output: 'REJECT' },
      { name: 'external to LoadBalancer IP', sourceIP: EXT, destIP: '1.2.3.4', destPort: 80, output: 'REJECT' },
    ]);
  });

  it('TestClusterIPGeneral: ports, protocols, hairpin, bad ports rejected, unallocated ClusterIPs dropped', () => {
    const ports = [
      { name: 'http', port: 80 },
      { name: 'https', port: 443, targetPort: 8443 },
      { name: 'dns-udp', port: 53, protocol: 'UDP' },
      { name: 'dns-tcp', port: 53, targetPort: 5353 },
      { name: 'dns-sctp', port: 53, protocol: 'SCTP' },
    ];
    const t = table(
      [
        makeService('ns1', 'svc1', { clusterIP: '172.30.0.41', ports: [{ name: 'http', port: 80 }] }),
        makeService('ns2', 'svc2', { clusterIP: '172.30.0.42', ports }),
      ],
      [
        slice('ns1', 'svc1', [{ ip: '10.180.0.1', nodeName: TEST_NODE }], [{ name: 'http', port: 80 }]),
        slice(
          'ns2',
          'svc2',
          [
            { ip: '10.180.0.1', nodeName: TEST_NODE },
            { ip: '10.180.2.1', nodeName: 'node2' },
          ],
          [
            { name: 'http', port: 80 },
            { name: 'https', port: 8443 },
            { name: 'dns-udp', port: 53, protocol: 'UDP' },
            { name: 'dns-tcp', port: 5353 },
            { name: 'dns-sctp', port: 53, protocol: 'SCTP' },
          ],
        ),
      ],
    );
    run(t, [
      { name: 'simple clusterIP', sourceIP: '10.180.0.2', destIP: '172.30.0.41', destPort: 80, output: '10.180.0.1:80', masq: false },
      { name: 'hairpin to cluster IP', sourceIP: '10.180.0.1', destIP: '172.30.0.41', destPort: 80, output: '10.180.0.1:80', masq: true },
      {
        name: 'clusterIP with multiple endpoints',
        sourceIP: '10.180.0.2',
        destIP: '172.30.0.42',
        destPort: 80,
        output: '10.180.0.1:80, 10.180.2.1:80',
      },
      { name: 'clusterIP with TargetPort', sourceIP: '10.180.0.2', destIP: '172.30.0.42', destPort: 443, output: '10.180.0.1:8443, 10.180.2.1:8443' },
      {
        name: 'same port, TCP',
        sourceIP: '10.180.0.2',
        protocol: 'TCP',
        destIP: '172.30.0.42',
        destPort: 53,
        output: '10.180.0.1:5353, 10.180.2.1:5353',
      },
      {
        name: 'same port, UDP',
        sourceIP: '10.180.0.2',
        protocol: 'UDP',
        destIP: '172.30.0.42',
        destPort: 53,
        output: '10.180.0.1:53, 10.180.2.1:53',
      },
      {
        name: 'same port, SCTP',
        sourceIP: '10.180.0.2',
        protocol: 'SCTP',
        destIP: '172.30.0.42',
        destPort: 53,
        output: '10.180.0.1:53, 10.180.2.1:53',
      },
      {
        name: 'TCP-only port does not match UDP traffic',
        sourceIP: '10.180.0.2',
        protocol: 'UDP',
        destIP: '172.30.0.42',
        destPort: 80,
        output: 'REJECT',
      },
      { name: "svc1 does not accept svc2's ports", sourceIP: '10.180.0.2', destIP: '172.30.0.41', destPort: 443, output: 'REJECT' },
      { name: 'packet to unallocated cluster ip', sourceIP: '10.180.0.2', destIP: '172.30.0.50', destPort: 80, output: 'DROP' },
    ]);
  });

  it('TestLoadBalancer: source ranges filter LB VIPs, not NodePorts; the node and its SNATted VIP are allowed', () => {
    const t = table(
      [
        makeService('ns1', 'svc1', {
          type: 'LoadBalancer',
          clusterIP: '172.30.0.41',
          ports: [{ name: 'p80', port: 80, nodePort: 3001 }],
          ingress: [{ ip: '1.2.3.4' }, { ip: '5.6.7.8' }],
          loadBalancerSourceRanges: ['192.168.0.0/24', ' 203.0.113.0/25'],
        }),
      ],
      [slice('ns1', 'svc1', [{ ip: '10.180.0.1' }])],
    );
    const ep = '10.180.0.1:80';
    run(t, [
      { name: 'pod to cluster IP', sourceIP: '10.0.0.2', destIP: '172.30.0.41', destPort: 80, output: ep, masq: false },
      { name: 'external to nodePort', sourceIP: EXT, destIP: NODE, destPort: 3001, output: ep, masq: true },
      { name: 'nodePort bypasses LoadBalancerSourceRanges', sourceIP: BLOCKED, destIP: NODE, destPort: 3001, output: ep, masq: true },
      { name: 'accepted external to LB1', sourceIP: EXT, destIP: '1.2.3.4', destPort: 80, output: ep, masq: true },
      { name: 'accepted external to LB2', sourceIP: EXT, destIP: '5.6.7.8', destPort: 80, output: ep, masq: true },
      { name: 'blocked external to LB1', sourceIP: BLOCKED, destIP: '1.2.3.4', destPort: 80, output: 'DROP' },
      { name: 'blocked external to LB2', sourceIP: BLOCKED, destIP: '5.6.7.8', destPort: 80, output: 'DROP' },
      { name: 'pod to LB1 (blocked by LoadBalancerSourceRanges)', sourceIP: '10.0.0.2', destIP: '1.2.3.4', destPort: 80, output: 'DROP' },
      { name: 'pod to LB2 (blocked by LoadBalancerSourceRanges)', sourceIP: '10.0.0.2', destIP: '5.6.7.8', destPort: 80, output: 'DROP' },
      { name: 'node to LB1 (allowed by LoadBalancerSourceRanges)', sourceIP: NODE, destIP: '1.2.3.4', destPort: 80, output: ep, masq: true },
      { name: 'node to LB2 (allowed by LoadBalancerSourceRanges)', sourceIP: NODE, destIP: '5.6.7.8', destPort: 80, output: ep, masq: true },
      { name: 'same node to LB1, SNATted to LB1 (implicitly allowed)', sourceIP: '1.2.3.4', destIP: '1.2.3.4', destPort: 80, output: ep, masq: true },
      { name: 'same node to LB2, SNATted to LB2 (implicitly allowed)', sourceIP: '5.6.7.8', destIP: '5.6.7.8', destPort: 80, output: ep, masq: true },
    ]);
  });

  describe('TestNodePorts: the primary IP only by default; secondary IPs with nodePortAddresses', () => {
    const cases: [string, IPFamily, string[] | null, boolean][] = [
      ['ipv4', 'IPv4', null, false],
      ['ipv4, multiple nodeport-addresses', 'IPv4', ['192.168.0.0/24', '192.168.1.0/24', '2001:db8::/64'], true],
      ['ipv6', 'IPv6', null, false],
      ['ipv6, multiple nodeport-addresses', 'IPv6', ['192.168.0.0/24', '192.168.1.0/24', '2001:db8::/64', '2001:db8:1::2/128'], true],
    ];
    for (const [name, family, addrs, allowAlt] of cases) {
      it(name, () => {
        const v4 = family === 'IPv4';
        const [svcIP, ep1, ep2, nodeIP] = v4
          ? ['172.30.0.41', '10.180.0.1', '10.180.2.1', NODE]
          : ['fd00:172:30::41', 'fd00:10:180::1', 'fd00:10:180::2:1', TEST_NODE_IPV6];
        const t = table(
          [makeService('ns1', 'svc1', { type: 'NodePort', clusterIPs: [svcIP], ports: [{ name: 'p80', port: 80, nodePort: 3001 }] })],
          [slice('ns1', 'svc1', [{ ip: ep1 }, { ip: ep2, nodeName: TEST_NODE }])],
          family,
          // upstream NewFakeProxier's nodePortAddresses, or the test's; "primary" is what the mode defaults to.
          addrs === null ? { nodePortAddresses: [] } : { nodePortAddresses: addrs },
        );
        const [pod, client, alt] = v4 ? ['10.0.0.2', EXT, TEST_NODE_IP_ALT] : ['fd00:10::2', '2600:5200::1', TEST_NODE_IPV6_ALT];
        const output = `${v4 ? ep1 : `[${ep1}]`}:80, ${v4 ? ep2 : `[${ep2}]`}:80`;
        run(t, [
          { name: 'pod to cluster IP', sourceIP: pod, destIP: svcIP, destPort: 80, output, masq: false },
          { name: 'external to nodePort', sourceIP: client, destIP: nodeIP, destPort: 3001, output, masq: true },
          { name: 'node to nodePort', sourceIP: nodeIP, destIP: nodeIP, destPort: 3001, output, masq: true },
          allowAlt
            ? { name: 'external to nodePort on secondary IP', sourceIP: client, destIP: alt, destPort: 3001, output, masq: true }
            : { name: 'secondary nodeIP ignores NodePorts', sourceIP: client, destIP: alt, destPort: 3001, output: '' },
        ]);
      });
    }
  });

  const lbLocal = (etp: 'Local' | 'Cluster') =>
    table(
      [
        makeService('ns1', 'svc1', {
          type: 'LoadBalancer',
          externalTrafficPolicy: etp,
          clusterIP: '172.30.0.41',
          externalIPs: ['192.168.99.11'],
          ports: [{ name: 'p80', port: 80, nodePort: 3001 }],
          ingress: [{ ip: '1.2.3.4' }],
          ...(etp === 'Local' ? { healthCheckNodePort: 30000 } : {}),
        }),
      ],
      [slice('ns1', 'svc1', [{ ip: '10.180.0.1' }, { ip: '10.180.2.1', nodeName: TEST_NODE }])],
    );
  const both = '10.180.0.1:80, 10.180.2.1:80';

  it('TestExternalTrafficPolicyLocal: external traffic keeps its source and stays local; pods short-circuit', () => {
    run(lbLocal('Local'), [
      { name: 'pod to cluster IP hits both endpoints, unmasqueraded', sourceIP: '10.0.0.2', destIP: '172.30.0.41', destPort: 80, output: both },
      { name: 'pod to external IP hits both endpoints, unmasqueraded', sourceIP: '10.0.0.2', destIP: '192.168.99.11', destPort: 80, output: both },
      {
        name: 'external to external IP hits only local endpoint, unmasqueraded',
        sourceIP: EXT,
        destIP: '192.168.99.11',
        destPort: 80,
        output: '10.180.2.1:80',
      },
      { name: 'pod to LB IP hits only both endpoints, unmasqueraded', sourceIP: '10.0.0.2', destIP: '1.2.3.4', destPort: 80, output: both },
      { name: 'external to LB IP hits only local endpoint, unmasqueraded', sourceIP: EXT, destIP: '1.2.3.4', destPort: 80, output: '10.180.2.1:80' },
      { name: 'pod to NodePort hits both endpoints, unmasqueraded', sourceIP: '10.0.0.2', destIP: NODE, destPort: 3001, output: both },
      { name: 'external to NodePort hits only local endpoint, unmasqueraded', sourceIP: EXT, destIP: NODE, destPort: 3001, output: '10.180.2.1:80' },
    ]);
  });

  it('TestExternalTrafficPolicyCluster: external traffic is masqueraded and reaches every endpoint', () => {
    run(lbLocal('Cluster'), [
      { name: 'pod to cluster IP hits both endpoints, unmasqueraded', sourceIP: '10.0.0.2', destIP: '172.30.0.41', destPort: 80, output: both },
      {
        name: 'pod to external IP hits both endpoints, masqueraded',
        sourceIP: '10.0.0.2',
        destIP: '192.168.99.11',
        destPort: 80,
        output: both,
        masq: true,
      },
      {
        name: 'external to external IP hits both endpoints, masqueraded',
        sourceIP: EXT,
        destIP: '192.168.99.11',
        destPort: 80,
        output: both,
        masq: true,
      },
      { name: 'pod to LB IP hits both endpoints, masqueraded', sourceIP: '10.0.0.2', destIP: '1.2.3.4', destPort: 80, output: both, masq: true },
      { name: 'external to LB IP hits both endpoints, masqueraded', sourceIP: EXT, destIP: '1.2.3.4', destPort: 80, output: both, masq: true },
      { name: 'pod to NodePort hits both endpoints, masqueraded', sourceIP: '10.0.0.2', destIP: NODE, destPort: 3001, output: both, masq: true },
      { name: 'external to NodePort hits both endpoints, masqueraded', sourceIP: EXT, destIP: NODE, destPort: 3001, output: both, masq: true },
    ]);
  });
});

describe('tracer mechanics', () => {
  const sticky = table(
    [makeService('ns1', 'svc1', { clusterIP: '172.30.0.41', ports: [{ name: 'p80', port: 80 }], sessionAffinity: 'ClientIP' })],
    [slice('ns1', 'svc1', [{ ip: '10.180.0.1' }, { ip: '10.180.0.2' }, { ip: '10.180.0.3' }])],
  );
  const flow = { name: 'pod to ClusterIP', sourceIP: '10.0.0.2', destIP: '172.30.0.41', destPort: 80, output: '' };

  it('forks at numgen into every endpoint with probability 1/n, and reports the rules each branch matched', () => {
    const r = runFlow(sticky, flow);
    expect(r.branches.map((b) => b.probability)).toEqual([1 / 3, 1 / 3, 1 / 3]);
    const chains = r.branches[0]!.steps.map((s) => s.chain.replace(/-[A-Z0-9]{8}-.*$/, ''));
    // Affinity update, then DNAT in the endpoint chain; generation B's masquerading chain matches none of its two rules
    // (no mark, not a hairpin connection), so it reports no step.
    expect(chains).toEqual([
      'filter-prerouting-pre-dnat',
      'nat-prerouting',
      'services',
      'service',
      'endpoint',
      'endpoint',
      'filter-forward',
      'filter-forward',
      'nat-postrouting',
    ]);
    // B's endpoint chain: the affinity update, then the DNAT (A had its hairpin masquerade rule first: rule 3 there).
    expect(r.branches[0]!.end).toMatch(/^accepted; DNAT by endpoint-5OJB2KTY-ns1\/svc1\/tcp\/p80__10\.180\.0\.1\/80 rule 2$/);
  });

  it('follows an established affinity to its endpoint only', () => {
    const set = sticky.sets.find((s) => s.name.startsWith('affinity-') && s.name.endsWith('__10.180.0.2/80'))!.name;
    const r = traceNft(
      sticky,
      { src: '10.0.0.2', dst: '172.30.0.41', protocol: 'TCP', dport: 80, origin: 'external' },
      { localAddresses: [], affinityHits: [set] },
    );
    expect(r.endpoints).toEqual(['10.180.0.2:80']);
    expect(r.branches.map((b) => b.probability)).toEqual([1]);
  });

  it("honours a live base chain's policy drop (set from outside): forwarded traffic that runs off filter-forward is dropped, the node's own is not", () => {
    const live = {
      ...sticky,
      chains: sticky.chains.map((c) => (c.name === 'filter-forward' ? { ...c, base: { ...c.base!, policy: 'drop' as const } } : c)),
    };
    const r = runFlow(live, flow);
    expect(r.verdict).toBe('DROP');
    expect(r.endpoints).toEqual([]);
    expect(r.branches.map((b) => b.end)).toEqual(Array(3).fill('filter-forward: end of the base chain, policy drop'));
    // From the node itself: output and postrouting, never forward.
    expect(runFlow(live, { ...flow, sourceIP: NODE }).verdict).toBe('ACCEPT');
    expect(runFlow(sticky, flow).verdict).toBe('ACCEPT');
  });

  it('runs the base chains of a hook in the order the kernel does (nf_nat_register_fn: nat chains at the nat core priority, -100 in prerouting), whatever priority the live table lists for a nat chain', () => {
    const lb = table(
      [
        makeService('ns1', 'svc1', {
          type: 'LoadBalancer',
          clusterIP: '172.30.0.41',
          ports: [{ name: 'p80', port: 80, nodePort: 3001 }],
          ingress: [{ ip: '1.2.3.4' }],
          loadBalancerSourceRanges: ['203.0.113.0/25'],
        }),
      ],
      [slice('ns1', 'svc1', [{ ip: '10.180.0.1' }])],
    );
    const at = (name: string, priority: number) => ({
      ...lb,
      chains: lb.chains.map((c) => (c.name === name ? { ...c, base: { ...c.base!, priority } } : c)),
    });
    const blocked = { name: 'blocked external to LB', sourceIP: BLOCKED, destIP: '1.2.3.4', destPort: 80, output: 'DROP' };
    checkFlow(lb, blocked);
    // nat-prerouting listed at -150 still DNATs after the pre-DNAT filter (-110): the source range still applies.
    checkFlow(at('nat-prerouting', -150), blocked);
    // The pre-DNAT filter moved to -90 sees the endpoint, not the VIP: the source range no longer applies.
    checkFlow(at('filter-prerouting-pre-dnat', -90), { ...blocked, output: '10.180.0.1:80', masq: true });
  });

  describe('generation B (upstream v1.36+)', () => {
    const svc = makeService('ns1', 'svc1', { clusterIP: '172.30.0.41', ports: [{ name: 'p80', port: 80, targetPort: 8080 }] });
    const b = table(
      [svc],
      [slice('ns1', 'svc1', [{ ip: '10.180.0.1', nodeName: TEST_NODE }, { ip: '10.180.0.2' }, { ip: '10.180.0.3' }], [{ name: 'p80', port: 8080 }])],
      'IPv4',
      {
        generation: 'B',
      },
    );

    it('forks at the numgen map DNAT into every endpoint with probability 1/n, without endpoint chains (writeServiceToEndpointDNATs)', () => {
      const r = runFlow(b, flow);
      const byEndpoint = [...r.branches].sort((x, y) => x.dnat!.ip.localeCompare(y.dnat!.ip));
      expect(byEndpoint.map((x) => [x.dnat, x.probability])).toEqual([1, 2, 3].map((n) => [{ ip: `10.180.0.${n}`, port: 8080 }, 1 / 3]));
      expect(r.branches[0]!.steps.map((s) => `${s.chain.replace(/-[A-Z0-9]{8}-.*$/, '')} #${s.index}`)).toEqual([
        'filter-prerouting-pre-dnat #1',
        'nat-prerouting #1',
        'services #2',
        'service #1',
        'filter-forward #1',
        'filter-forward #2',
        'nat-postrouting #1',
      ]);
      expect(r.branches[0]!.end).toBe('accepted; DNAT by service-ULMVA6XW-ns1/svc1/tcp/p80 rule 1');
    });

    it('masquerades a local endpoint reaching itself through its service: @hairpin-connections holds its address and port after DNAT', () => {
      const r = runFlow(b, { ...flow, sourceIP: '10.180.0.1' });
      const byEndpoint = [...r.branches].sort((x, y) => x.dnat!.ip.localeCompare(y.dnat!.ip));
      expect(byEndpoint.map((x) => [x.dnat!.ip, x.masquerade])).toEqual([
        ['10.180.0.1', true],
        ['10.180.0.2', false],
        ['10.180.0.3', false],
      ]);
      expect(byEndpoint[0]!.end).toBe('accepted; DNAT by service-ULMVA6XW-ns1/svc1/tcp/p80 rule 1; masqueraded by masquerading rule 2');
    });

    it('does not masquerade a connection no DNAT rewrote (ct status dnat), even when it matches a hairpin element', () => {
      const r = runFlow(b, { ...flow, sourceIP: '10.180.0.1', destIP: '10.180.0.1', destPort: 8080 });
      expect(r.branches.map((x) => [x.verdict, x.dnat, x.masquerade])).toEqual([['ACCEPT', null, false]]);
    });
  });

  it('says when a rule jumps to a chain the table lacks, instead of inventing a path', () => {
    const broken = { ...sticky, chains: sticky.chains.filter((c) => !c.name.startsWith('endpoint-')) };
    const r = traceNft(broken, { src: '10.0.0.2', dst: '172.30.0.41', protocol: 'TCP', dport: 80, origin: 'external' }, { localAddresses: [] });
    expect(r.verdict).toBe('DROP');
    expect(r.warnings.join('\n')).toMatch(/goto to missing chain endpoint-/);
  });
});
