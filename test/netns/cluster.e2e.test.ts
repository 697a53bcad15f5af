/**
 * Smoke test of the whole harness: a one-node cluster with two pods and a
 * client, a hand-written kube-proxy-style ruleset loaded with the real
 * adapter (nft, then legacy, each in a fresh cluster), and real TCP and UDP
 * traffic from a pod, from the node itself and from the client.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIptables } from '../../iptables/restore.ts';
import type { IptablesBackend } from '../../iptables/iptables.ts';
import { createCluster, NODE_1_TWO_PODS, type Cluster } from './cluster.ts';
import { errorsSeen, podsHit, request, requestFromNode } from './traffic.ts';

const SVC = '172.30.0.10';
const NO_ENDPOINTS = '172.30.0.11';
const DROPPED = '172.30.0.12';

// Upstream's shape: portals in PREROUTING/OUTPUT, a statistic ladder, hairpin and off-cluster masquerade marks.
function sep(name: string, ip: string, proto: string, port: number): string[] {
  return [`-A KUBE-SEP-${name} -s ${ip}/32 -j KUBE-MARK-MASQ`, `-A KUBE-SEP-${name} -p ${proto} -m ${proto} -j DNAT --to-destination ${ip}:${port}`];
}
const RULES = [
  '*nat',
  ...[
    'KUBE-SERVICES',
    'KUBE-POSTROUTING',
    'KUBE-MARK-MASQ',
    'KUBE-SVC-TCP',
    'KUBE-SVC-UDP',
    'KUBE-SEP-A-TCP',
    'KUBE-SEP-B-TCP',
    'KUBE-SEP-A-UDP',
    'KUBE-SEP-B-UDP',
  ].map((c) => `:${c} - [0:0]`),
  '-I PREROUTING 1 -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
  '-I OUTPUT 1 -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
  '-I POSTROUTING 1 -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
  '-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000',
  '-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN',
  '-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000',
  '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
  `-A KUBE-SERVICES -d ${SVC}/32 -p tcp -m comment --comment "default/web:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-TCP`,
  `-A KUBE-SERVICES -d ${SVC}/32 -p udp -m comment --comment "default/web:dns cluster IP" -m udp --dport 53 -j KUBE-SVC-UDP`,
  `-A KUBE-SVC-TCP ! -s 10.244.0.0/16 -d ${SVC}/32 -p tcp -m tcp --dport 80 -j KUBE-MARK-MASQ`,
  '-A KUBE-SVC-TCP -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-A-TCP',
  '-A KUBE-SVC-TCP -j KUBE-SEP-B-TCP',
  `-A KUBE-SVC-UDP ! -s 10.244.0.0/16 -d ${SVC}/32 -p udp -m udp --dport 53 -j KUBE-MARK-MASQ`,
  '-A KUBE-SVC-UDP -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-A-UDP',
  '-A KUBE-SVC-UDP -j KUBE-SEP-B-UDP',
  ...sep('A-TCP', '10.244.1.2', 'tcp', 80),
  ...sep('B-TCP', '10.244.1.3', 'tcp', 80),
  ...sep('A-UDP', '10.244.1.2', 'udp', 53),
  ...sep('B-UDP', '10.244.1.3', 'udp', 53),
  'COMMIT',
  '*filter',
  ':KUBE-SERVICES - [0:0]',
  ...['INPUT', 'FORWARD', 'OUTPUT'].map(
    (c) => `-I ${c} 1 -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES`,
  ),
  `-A KUBE-SERVICES -d ${NO_ENDPOINTS}/32 -p tcp -m comment --comment "default/empty:http has no endpoints" -m tcp --dport 80 -j REJECT`,
  `-A KUBE-SERVICES -d ${NO_ENDPOINTS}/32 -p udp -m comment --comment "default/empty:dns has no endpoints" -m udp --dport 53 -j REJECT`,
  `-A KUBE-SERVICES -d ${DROPPED}/32 -m comment --comment "dropped" -j DROP`,
  'COMMIT',
  '',
].join('\n');

describe.each<IptablesBackend>(['nft', 'legacy'])('one node, two pods, client (%s)', (backend) => {
  let cluster: Cluster | undefined;
  let setupMs = 0;
  const c = (): Cluster => cluster ?? expect.fail('cluster was not built');

  beforeAll(async () => {
    const started = performance.now();
    cluster = await createCluster({
      prefix: `kptsmoke${backend}`,
      nodes: [NODE_1_TWO_PODS],
      client: true,
    });
    setupMs = performance.now() - started;
    await cluster.startPodServers({ tcp: [80], udp: [53] });
    const ipt = createIptables({ family: 'IPv4', backend, runner: cluster.runnerIn(cluster.node('node-1').ns) });
    await ipt.restore(RULES, { noflush: true, counters: false });
  });

  afterAll(async () => {
    const started = performance.now();
    await cluster?.destroy();
    console.info(`[${backend}] cluster setup ${setupMs.toFixed(0)} ms, teardown ${(performance.now() - started).toFixed(0)} ms`);
  });

  it('holds the rules in the node namespace only', async () => {
    const ipt = createIptables({ family: 'IPv4', backend, runner: c().runnerIn(c().node('node-1').ns) });
    expect(await ipt.save(['nat'])).toContain('-A KUBE-SVC-TCP -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-A-TCP');
    const inPod = createIptables({ family: 'IPv4', backend, runner: c().runnerIn(c().pod('pod-a').ns) });
    expect(await inPod.save(['nat'])).not.toContain('KUBE-SERVICES');
  });

  it('pod -> ClusterIP reaches both pods over TCP and UDP (same bridge: br_netfilter un-DNATs the reply)', async () => {
    for (const [proto, port] of [
      ['tcp', 80],
      ['udp', 53],
    ] as const) {
      const rs = await request(c(), c().pod('pod-a').ns, { proto, ip: SVC, port, count: 30 });
      expect(errorsSeen(rs)).toEqual(new Map());
      expect([...podsHit(rs).keys()].sort()).toEqual(['pod-a', 'pod-b']);
      for (const r of rs) {
        if (!r.ok) continue;
        // Hairpin (pod-a to itself) is masqueraded to the bridge address; pod-b sees pod-a.
        expect(r.client.split(':')[0]).toBe(r.pod === 'pod-a' ? '10.244.1.1' : '10.244.1.2');
        expect(r.local).toBe(`${r.pod === 'pod-a' ? '10.244.1.2' : '10.244.1.3'}:${port}`);
      }
    }
  });

  it('node -> ClusterIP (nat OUTPUT) reaches both pods', async () => {
    for (const [proto, port] of [
      ['tcp', 80],
      ['udp', 53],
    ] as const) {
      const rs = await requestFromNode(c(), 'node-1', { proto, ip: SVC, port, count: 30 });
      expect(errorsSeen(rs)).toEqual(new Map());
      expect([...podsHit(rs).keys()].sort()).toEqual(['pod-a', 'pod-b']);
    }
  });

  it('client -> ClusterIP via the node reaches both pods, masqueraded (off-cluster source)', async () => {
    for (const [proto, port] of [
      ['tcp', 80],
      ['udp', 53],
    ] as const) {
      const rs = await request(c(), c().client!.ns, { proto, ip: SVC, port, count: 30 });
      expect(errorsSeen(rs)).toEqual(new Map());
      expect([...podsHit(rs).keys()].sort()).toEqual(['pod-a', 'pod-b']);
      for (const r of rs) if (r.ok) expect(r.client.split(':')[0]).toBe('10.244.1.1');
    }
  });

  it('REJECT (icmp-port-unreachable) is "refused" for TCP and UDP, from pod, node and client; DROP is a timeout', async () => {
    const froms = [c().pod('pod-a').ns, c().node('node-1').ns, c().client!.ns];
    for (const from of froms) {
      for (const [proto, port] of [
        ['tcp', 80],
        ['udp', 53],
      ] as const) {
        const rs = await request(c(), from, { proto, ip: NO_ENDPOINTS, port, count: 2, timeoutMs: 2000 });
        expect(
          rs.map((r) => (r.ok ? r.pod : r.error)),
          `${proto} from ${from}`,
        ).toEqual(['refused', 'refused']);
      }
      const dropped = await request(c(), from, { proto: 'tcp', ip: DROPPED, port: 80, count: 1, timeoutMs: 300 });
      expect(dropped.map((r) => (r.ok ? r.pod : r.error))).toEqual(['timeout']);
    }
  });

  it('without bridge-nf-call-iptables, replies from the other pod on the bridge bypass un-DNAT and are lost', async () => {
    const node = c().node('node-1').ns;
    await c().net.setSysctls(node, { 'net.bridge.bridge-nf-call-iptables': 0 });
    try {
      const rs = await request(c(), c().pod('pod-a').ns, { proto: 'tcp', ip: SVC, port: 80, count: 20, timeoutMs: 200 });
      expect([...podsHit(rs).keys()]).not.toContain('pod-b');
      expect(errorsSeen(rs).get('timeout') ?? 0).toBeGreaterThan(0);
    } finally {
      await c().net.setSysctls(node, { 'net.bridge.bridge-nf-call-iptables': 1 });
    }
  });
});

// Dual-stack plan: an IPv6 ClusterIP with endpoints on two nodes, loaded with ip6tables-nft on node-1.
const SVC6 = 'fd00:172:30::10';
const RULES6 = [
  '*nat',
  ':KUBE-SERVICES - [0:0]',
  ':KUBE-POSTROUTING - [0:0]',
  ':KUBE-SVC-V6 - [0:0]',
  '-I PREROUTING 1 -j KUBE-SERVICES',
  '-I OUTPUT 1 -j KUBE-SERVICES',
  '-I POSTROUTING 1 -j KUBE-POSTROUTING',
  '-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN',
  '-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000',
  '-A KUBE-POSTROUTING -j MASQUERADE',
  `-A KUBE-SERVICES -d ${SVC6}/128 -p tcp -m tcp --dport 80 -j KUBE-SVC-V6`,
  '-A KUBE-SVC-V6 ! -s fd00:10:244::/48 -j MARK --or-mark 0x4000',
  '-A KUBE-SVC-V6 -p tcp -m statistic --mode random --probability 0.50000000000 -j DNAT --to-destination [fd00:10:244:1::2]:80',
  '-A KUBE-SVC-V6 -p tcp -j DNAT --to-destination [fd00:10:244:2::2]:80',
  'COMMIT',
  '',
].join('\n');

describe('dual-stack, two nodes (nft, IPv6 ClusterIP)', () => {
  let cluster: Cluster | undefined;
  const c = (): Cluster => cluster ?? expect.fail('cluster was not built');

  beforeAll(async () => {
    cluster = await createCluster({
      prefix: 'kptsmokev6',
      ipv6: true,
      nodes: [
        {
          name: 'node-1',
          podCIDR: '10.244.1.0/24',
          pods: [
            { name: 'pod-a', ip: '10.244.1.2' },
            { name: 'pod-b', ip: '10.244.1.3' },
          ],
        },
        { name: 'node-2', podCIDR: '10.244.2.0/24', pods: [{ name: 'pod-c', ip: '10.244.2.2' }] },
      ],
      client: true,
    });
    await cluster.startPodServers({ tcp: [80] });
    await createIptables({ family: 'IPv6', backend: 'nft', runner: cluster.runnerIn(cluster.node('node-1').ns) }).restore(RULES6, {
      noflush: true,
      counters: false,
    });
  });
  afterAll(async () => {
    await cluster?.destroy();
  });

  it('routes pod IPv4 and IPv6 across nodes', async () => {
    for (const ip of [c().pod('pod-c').ip, c().pod('pod-c').ip6!]) {
      const rs = await request(c(), c().pod('pod-a').ns, { proto: 'tcp', ip, port: 80, count: 3 });
      expect(rs.map((r) => (r.ok ? r.pod : r.error))).toEqual(['pod-c', 'pod-c', 'pod-c']);
    }
  });

  it('reaches endpoints on both nodes through the IPv6 ClusterIP from a pod, the node and the client', async () => {
    for (const from of [c().pod('pod-b').ns, c().node('node-1').ns, c().client!.ns]) {
      const rs = await request(c(), from, { proto: 'tcp', ip: SVC6, port: 80, count: 30 });
      expect(errorsSeen(rs), from).toEqual(new Map());
      expect([...podsHit(rs).keys()].sort(), from).toEqual(['pod-a', 'pod-c']);
    }
  });
});
