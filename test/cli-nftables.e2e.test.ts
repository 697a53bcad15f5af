/**
 * `diff` and `trace --mode=nftables` on node-1 of a namespace cluster (test/netns), over the table `render` wrote
 * (test/nft-cli.case.ts), after its base chains were changed from outside the way another tool or an operator does:
 * `policy drop` on filter-forward, nat-prerouting re-created at another priority. Both change what the kernel does
 * to real traffic (checked here), so diff reports them and trace follows them (a live base chain's policy, its
 * priority order); the damage check (nftables/table-check.ts changedBaseChains) notices the same.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Nft } from '../nftables/nft.ts';
import { cli } from './cli-run.ts';
import { CLIENT, FLOW_NODES, NODE1_6, PODS, TARGET_PORT } from './flow-cases.case.ts';
import { NFT_FLAGS, traceSummary, writeCliObjects } from './nft-cli.case.ts';
import { createCluster, type Cluster } from './netns/cluster.ts';
import type { PodServers } from './netns/servers.ts';
import { podsHit, request } from './netns/traffic.ts';

const MAIN = new URL('../src/main.ts', import.meta.url).pathname;
let cluster: Cluster;
let servers: PodServers;
let objects: string;

const node = () => cluster.node('node-1').ns;
const nft = () => new Nft(cluster.runnerIn(node()));
const main = (args: readonly string[]) => cluster.exec(node(), process.execPath, [MAIN, ...args], { timeoutMs: 30_000 });
const diff = () => main(['diff', ...NFT_FLAGS, '--objects', objects]);
const trace = async (src: string, dst: string) => {
  const r = await main(['trace', ...NFT_FLAGS, '--src', src, '--dst', dst]);
  expect(r.code, r.stderr).toBe(0);
  return { ...traceSummary(r.stdout), out: r.stdout };
};
/** Which pods answer `count` requests (sorted), or the errors. */
const answers = async (fromNs: string, ip: string, count = 4): Promise<string> => {
  const results = await request(cluster, fromNs, { proto: 'tcp', ip, port: 80, count, timeoutMs: 700 });
  const hit = podsHit(results);
  return hit.size > 0 ? [...hit.keys()].sort().join() : [...new Set(results.map((r) => (r.ok ? '' : r.error)))].join();
};
const endpoint = (pod: keyof typeof PODS) => `${PODS[pod].ip}:${TARGET_PORT}`;

beforeAll(async () => {
  cluster = await createCluster({ prefix: 'kptnftcli', client: true, nodes: FLOW_NODES });
  // node-1 has the IPv6 address its Node object lists too (render puts it in nodeport-ips; diff wants the NodePorts on
  // the interfaces' addresses, as the agent does).
  await cluster.exec(node(), 'ip', ['-6', 'addr', 'add', `${NODE1_6}/64`, 'dev', 'eth0', 'nodad']);
  servers = await cluster.startPodServers({ tcp: [TARGET_PORT] });
  objects = await writeCliObjects();
  const rendered = await cli(['render', ...NFT_FLAGS, '--objects', objects]);
  expect(rendered.code, rendered.stderr).toBe(0);
  await nft().run(rendered.stdout);
}, 60_000);

afterAll(async () => {
  await servers?.stop();
  await cluster?.destroy();
});

describe('diff and trace --mode=nftables over base chains changed from outside', { timeout: 60_000 }, () => {
  it('the table render wrote: diff converged, the client reaches the ClusterIP, trace agrees', async () => {
    const d = await diff();
    expect(d.code, d.stdout + d.stderr).toBe(0);
    expect(d.stdout).toMatch(/^IPv4: converged/m);
    expect(await answers(cluster.client!.ns, '172.30.0.10', 12)).toBe('pod-a,pod-c');
    expect(await trace(CLIENT, '172.30.0.10:80')).toMatchObject({ verdict: 'ACCEPT', endpoints: [endpoint('pod-a'), endpoint('pod-c')] });
  });

  it('filter-forward given policy drop: the kernel drops forwarded service traffic; diff reports the policy, trace says DROP', async () => {
    await nft().run('add chain ip kube-proxy filter-forward { type filter hook forward priority 0 ; policy drop ; }\n');
    try {
      expect(await answers(cluster.client!.ns, '172.30.0.10')).toBe('timeout');
      const d = await diff();
      expect(d.code, d.stderr).toBe(1);
      expect(d.stdout).toContain(
        [
          'IPv4 (table ip kube-proxy): 1 objects differ',
          '  fixed objects',
          '    chain filter-forward: policy differs',
          '      + type filter hook forward priority 0',
          '      - type filter hook forward priority 0 policy drop',
        ].join('\n'),
      );
      const t = await trace(CLIENT, '172.30.0.10:80');
      expect(t).toMatchObject({ verdict: 'DROP', endpoints: [] });
      expect(t.out).toContain('filter-forward: end of the base chain, policy drop');
    } finally {
      await nft().run('add chain ip kube-proxy filter-forward { type filter hook forward priority 0 ; policy accept ; }\n');
    }
    expect((await diff()).code).toBe(0);
  });

  it('base chains re-created at other priorities: diff reports each; trace runs them in the order the kernel does, a nat chain at its nat hook', async () => {
    // pod-a is outside the fw LoadBalancer's source range: dropped by firewall-check, which must see the VIP before DNAT.
    expect(await answers(cluster.pod('pod-a').ns, '203.0.113.50')).toBe('timeout');
    expect(await trace(PODS['pod-a'].ip, '203.0.113.50:80')).toMatchObject({ verdict: 'DROP' });
    // A nat chain at -150 still runs at the nat core's hook (-100, NF_IP_PRI_NAT_DST): only its order among nat chains moves.
    await nft().run(
      'delete chain ip kube-proxy nat-prerouting\n' +
        'add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority -150 ; }\n' +
        'add rule ip kube-proxy nat-prerouting jump services\n',
    );
    expect(await answers(cluster.pod('pod-a').ns, '203.0.113.50')).toBe('timeout');
    let d = await diff();
    expect(d.code, d.stderr).toBe(1);
    expect(d.stdout).toContain(
      [
        '    chain nat-prerouting: priority differs',
        '      + type nat hook prerouting priority -100',
        '      - type nat hook prerouting priority -150',
      ].join('\n'),
    );
    expect(await trace(PODS['pod-a'].ip, '203.0.113.50:80')).toMatchObject({ verdict: 'DROP', endpoints: [] });
    // The pre-DNAT filter moved after DNAT sees the endpoint, not the VIP: the source range no longer applies.
    await nft().run(
      'delete chain ip kube-proxy filter-prerouting-pre-dnat\n' +
        'add chain ip kube-proxy filter-prerouting-pre-dnat { type filter hook prerouting priority -90 ; }\n' +
        'add rule ip kube-proxy filter-prerouting-pre-dnat ct state new jump firewall-check\n',
    );
    expect(await answers(cluster.pod('pod-a').ns, '203.0.113.50')).toBe('pod-b');
    d = await diff();
    expect(d.stdout).toContain(
      [
        '    chain filter-prerouting-pre-dnat: priority differs',
        '      + type filter hook prerouting priority -110',
        '      - type filter hook prerouting priority -90',
      ].join('\n'),
    );
    expect(await trace(PODS['pod-a'].ip, '203.0.113.50:80')).toMatchObject({ verdict: 'ACCEPT', endpoints: [endpoint('pod-b')] });
  });
});
