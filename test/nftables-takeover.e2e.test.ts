/**
 * Taking over a node from upstream kube-proxy in nftables mode: the node's
 * `ip kube-proxy` table is the one upstream v1.36+ (generation B) or a
 * release before v1.33 (generation A′) wrote (upstream-nft-tables.case.ts),
 * and carries traffic to both pods. The real `kube-proxy-ts --mode=nftables`
 * process then starts there with the same Service: its first sync replaces
 * upstream's ruleset in one transaction (base chains whose priority changed
 * are re-created, the objects only upstream has are flushed and then deleted
 * at least 1 s later), traffic keeps reaching both pods, and `diff` reports
 * converged: nothing of upstream's shape is left. We write generation B too:
 * over upstream B's table the first sync changes only what the objects
 * differ in (no ServiceCIDR here: no drop rule), over A′'s its endpoint
 * chains and mark-for-masquerade go with its other objects.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Nft } from '../nftables/nft.ts';
import { startAgentProcess, waitFor } from './agent-runner.ts';
import { makeEndpointSlice, makeNode, makeService } from './builders.ts';
import { createCluster, NODE_1_TWO_PODS, type Cluster } from './netns/cluster.ts';
import type { PodServers } from './netns/servers.ts';
import { podsHit, request } from './netns/traffic.ts';
import { GENERATION_A_PRIME, GENERATION_B } from './upstream-nft-tables.case.ts';
import { errorLines } from './log-lines.ts';

const MAIN = new URL('../src/main.ts', import.meta.url).pathname;
const SVC_IP = '172.30.0.10';
const NODE_IP = '192.168.50.11';
const NODE_PORT = 30080;
const OBJECTS = [
  makeNode('node-1', { addresses: [NODE_IP], podCIDR: '10.244.1.0/24' }),
  makeService('ns1', 'web', { type: 'NodePort', clusterIP: SVC_IP, ports: [{ name: 'p80', port: 80, targetPort: 8080, nodePort: NODE_PORT }] }),
  makeEndpointSlice('ns1', 'web', 'web-1', {
    endpoints: [
      { ip: '10.244.1.2', nodeName: 'node-1' },
      { ip: '10.244.1.3', nodeName: 'node-1' },
    ],
    ports: [{ name: 'p80', port: 8080 }],
  }),
];

describe.each([
  { generation: 'v1.36+ (generation B)', table: GENERATION_B, gone: [] },
  {
    generation: 'before v1.33 (generation A′)',
    table: GENERATION_A_PRIME,
    gone: [
      'chain filter-prerouting',
      'chain filter-output-post-dnat',
      'chain mark-for-masquerade',
      'chain endpoint-MGPCLJJO-ns1/web/tcp/p80__10.244.1.2/8080',
      'chain endpoint-AL6H5J26-ns1/web/tcp/p80__10.244.1.3/8080',
    ],
  },
])('taking over from upstream kube-proxy $generation in nftables mode', ({ table, gone }) => {
  let cluster: Cluster;
  let servers: PodServers;
  let dir: string;
  const ns = () => cluster.node('node-1').ns;
  const nft = () => new Nft(cluster.runnerIn(ns()));

  /** 12 requests to the ClusterIP and 12 to the NodePort from the outside client: all answered, by both pods. */
  const reachesBoth = async () => {
    for (const [ip, port] of [
      [SVC_IP, 80],
      [NODE_IP, NODE_PORT],
    ] as const) {
      const hit = podsHit(await request(cluster, cluster.client!.ns, { proto: 'tcp', ip, port, count: 12, timeoutMs: 800 }));
      if ([...hit.keys()].sort().join() !== 'pod-a,pod-b' || (hit.get('pod-a') ?? 0) + (hit.get('pod-b') ?? 0) !== 12) return false;
    }
    return true;
  };
  /** What the live table holds, as "chain NAME" (with its hook and priority for base chains) and "set NAME" / "map NAME". */
  const objects = async () => {
    const t = (await nft().list('ip'))!;
    return [
      ...t.chains.map((c) => `chain ${c.name}${c.base ? ` ${c.base.type} ${c.base.hook} ${c.base.priority}` : ''}`),
      ...t.sets.map((s) => `${s.kind} ${s.name}`),
    ];
  };

  beforeAll(async () => {
    cluster = await createCluster({
      prefix: `kpttko${table === GENERATION_B ? 'b' : 'a'}`,
      client: true,
      nodes: [NODE_1_TWO_PODS],
    });
    servers = await cluster.startPodServers({ tcp: [8080] });
    dir = await mkdtemp(join(tmpdir(), 'kpt-takeover-'));
    await writeFile(join(dir, 'cluster.yaml'), OBJECTS.map((d) => dump(d)).join('---\n'));
    await nft().run(table);
  }, 60_000);

  afterAll(async () => {
    await servers?.stop();
    await cluster?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("upstream's table is a working ruleset: both pods answer through the ClusterIP and the NodePort", async () => {
    expect(await reachesBoth()).toBe(true);
  });

  it('the agent replaces it: traffic keeps reaching both pods, base chains take our priorities, nothing of upstream’s shape is left, diff converged', async () => {
    const flags = ['--objects', dir, '--hostname-override=node-1', '--cluster-cidr=10.244.0.0/16'];
    const agent = await startAgentProcess(
      ns(),
      [
        '--proxy-mode=nftables',
        ...flags,
        '--iptables-min-sync-period=0s',
        '--iptables-sync-period=2s',
        '--healthz-bind-address=127.0.0.1:0',
        '--metrics-bind-address=',
      ],
      // Ours, in neither of upstream's tables: a filter-input at priority 0 (A′: -110), the DNAT map in the service chain
      // (A′: a vmap to endpoint chains) and no drop rule for unallocated ClusterIPs (B's has one: its cluster has a
      // ServiceCIDR, the objects here none).
      async () => {
        const now = await objects();
        const t = (await nft().list('ip'))!;
        const rules = t.chains.flatMap((c) => c.rules);
        return (
          now.includes('chain filter-input filter input 0') &&
          rules.some((r) => r.includes('numgen random mod 2 map')) &&
          !rules.some((r) => r.includes('unallocated')) &&
          (await reachesBoth())
        );
      },
    );
    let objectsSeen: string[] = [];
    try {
      // Generation B's hairpin masquerade: one element per local endpoint, whoever wrote the table before.
      const hairpin = (await nft().list('ip'))!.sets.find((x) => x.name === 'hairpin-connections')!;
      expect(hairpin.elements!.map((e) => e.key).sort()).toEqual(['10.244.1.2 . 10.244.1.2 . tcp . 8080', '10.244.1.3 . 10.244.1.3 . tcp . 8080']);
      // Upstream's objects are flushed at once and deleted by a sync at least 1 s later (the 2 s periodic one).
      await waitFor(
        'upstream objects deleted',
        async () => !(objectsSeen = await objects()).some((o) => gone.some((g) => o === g || o.startsWith(`${g} `))),
        8000,
        () => `${agent.output().slice(-2000)}\nstill there: ${JSON.stringify(objectsSeen)}`,
      );
      const diff = await cluster.exec(ns(), process.execPath, [MAIN, 'diff', '--mode=nftables', ...flags]);
      expect(diff.code, diff.stdout + diff.stderr).toBe(0);
      expect(await reachesBoth()).toBe(true);
      // (A node with more CPUs than its conntrack table fits cannot raise it from this namespace: not this test's.)
      expect(
        errorLines(agent.output())
          .map((l) => l.text)
          .filter((l) => !l.includes('conntrack setup:')),
      ).toEqual([]);
    } finally {
      expect(await agent.stop()).toBe(0);
    }
  });
});
