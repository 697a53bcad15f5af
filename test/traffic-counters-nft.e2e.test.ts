/**
 * --traffic-counters in the nftables mode, for real: the agent process in a
 * node namespace with --mode nftables, real TCP connections through a
 * ClusterIP, and
 * - kubeproxy_ts_endpoint_packets_total moving by exactly the connections
 *   each endpoint answered (each endpoint chain's named counter), and not at
 *   all for an endpoint that got none;
 * - /debug/services showing each endpoint chain's packets and bytes;
 * - `kube-proxy-ts top --mode nftables` and `diff --mode nftables` reading
 *   the counters from the kernel;
 * - an endpoint's counter going with its chain, and the connections made
 *   while the agent was down counted by the next one (whose first sync
 *   rewrites every chain: the counters keep what they counted).
 */
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgentProcess, waitFor, type AgentProcess } from './agent-runner.ts';
import { makeEndpointSlice, makeNode, makeService } from './builders.ts';
import { createCluster, type Cluster } from './netns/cluster.ts';
import type { PodServers } from './netns/servers.ts';
import { podsHit, request } from './netns/traffic.ts';
import { endpointPackets, expectConnectionsCounted, METRICS, metricsGet, trafficCluster, withTraffic } from './traffic-counters.case.ts';

const MAIN = new URL('../src/main.ts', import.meta.url).pathname;
let cluster: Cluster;
let servers: PodServers;
let dir: string;
let agent: AgentProcess | null = null;

const web = (ips: string[]) => [
  makeService('ns1', 'web', { clusterIP: '172.30.0.10', ports: [{ name: 'p80', port: 80, targetPort: 8080 }] }),
  makeEndpointSlice('ns1', 'web', 'web-1', { endpoints: ips.map((ip) => ({ ip, nodeName: 'node-1' })), ports: [{ name: 'p80', port: 8080 }] }),
];
const objects = (webIPs = ['10.244.1.2', '10.244.1.3']) => [
  makeNode('node-1', { addresses: ['192.168.50.11'], podCIDR: '10.244.1.0/24' }),
  ...web(webIPs),
  makeService('ns1', 'other', { clusterIP: '172.30.0.20', ports: [{ name: 'p80', port: 80, targetPort: 8080 }] }),
  makeEndpointSlice('ns1', 'other', 'other-1', { endpoints: [{ ip: '10.244.1.4', nodeName: 'node-1' }], ports: [{ name: 'p80', port: 8080 }] }),
];

/** Written beside and renamed: the agent's file watch never reads half a file. */
async function writeObjects(docs: readonly unknown[]): Promise<void> {
  await writeFile(join(dir, '.next'), docs.map((d) => dump(d)).join('---\n'));
  await rename(join(dir, '.next'), join(dir, 'cluster.yaml'));
}

const node = () => cluster.node('node-1').ns;

const get = (path: string) => metricsGet(cluster, path);
const packets = (service: string) => endpointPackets(cluster, service);

const show = (m: Map<string, number>) => JSON.stringify([...m].sort());

/**
 * Waits for the agent's reading after the last requests: it reads with `nft reset counters`, so what `nft list
 * counters` shows is what came since; nothing there means the agent's totals hold every packet.
 */
async function readAll(): Promise<void> {
  await waitFor(
    'a reading after the last requests',
    async () => !/"packets": [1-9]/.test((await cluster.exec(node(), 'nft', ['-j', 'list', 'counters', 'table', 'ip', 'kube-proxy'])).stdout),
    5000,
  );
}

/** The kernel's named counters in node-1's table. */
async function kernelCounters(): Promise<string[]> {
  const r = await cluster.exec(node(), 'nft', ['-j', 'list', 'counters', 'table', 'ip', 'kube-proxy']);
  return [...r.stdout.matchAll(/"name": "([^"]+)"/g)].map((m) => m[1]!).sort();
}

async function startAgent(): Promise<AgentProcess> {
  return startAgentProcess(
    node(),
    [
      '--mode',
      'nftables',
      '--objects',
      dir,
      '--hostname-override',
      'node-1',
      '--cluster-cidr',
      '10.244.0.0/16',
      '--iptables-min-sync-period',
      '0s',
      '--iptables-sync-period',
      '2s',
      '--healthz-bind-address',
      '',
      '--metrics-bind-address',
      METRICS,
      '--traffic-counters',
      '--traffic-counters-period',
      '500ms',
    ],
    async () => (await packets('ns1/web:p80')).size === 2,
  );
}

beforeAll(async () => {
  cluster = await createCluster(trafficCluster('kpttrnf'));
  servers = await cluster.startPodServers({ tcp: [8080] });
  dir = await mkdtemp(join(tmpdir(), 'kpt-traffic-nft-'));
  await writeObjects(objects());
  agent = await startAgent();
}, 60_000);

afterAll(async () => {
  await agent?.stop();
  await servers?.stop();
  await cluster?.destroy();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('--traffic-counters in nftables mode with real traffic', () => {
  it('moves the counter of each endpoint by the connections it answered, and not that of an endpoint that got none', async () => {
    await expectConnectionsCounted(cluster);
    // The kernel counts into the endpoint chain's named counter.
    const table = await cluster.exec(node(), 'nft', [
      'list',
      'chain',
      'ip',
      'kube-proxy',
      (await kernelCounters()).find((n) => n.includes('10.244.1.2/8080'))!,
    ]);
    expect(table.stdout).toMatch(
      /meta l4proto tcp counter name "endpoint-[A-Z2-7]{8}-ns1\/web\/tcp\/p80__10\.244\.1\.2\/8080" dnat to 10\.244\.1\.2:8080/,
    );
  });

  it('/debug/services shows the packets and bytes of each endpoint chain', async () => {
    const body = (await get('/debug/services')).body;
    expect(body).toMatch(
      /^ {2}10\.244\.1\.4:8080 +ready +node-1 \(local\) +endpoint-[A-Z2-7]{8}-ns1\/other\/tcp\/p80__10\.244\.1\.4\/8080 hairpin-connections\[10\.244\.1\.4 \. 10\.244\.1\.4 \. tcp \. 8080\] +0 pkts +0 bytes$/m,
    );
    // A local endpoint's generation B hairpin-connections element follows its chain.
    expect(body).toMatch(
      /^ {2}10\.244\.1\.2:8080 +ready +node-1 \(local\) +endpoint-\S+ hairpin-connections\[\S+ \. \S+ \. tcp \. 8080\] +[1-9]\d* pkts +[1-9]\d* bytes$/m,
    );
  });

  it("top --mode nftables shows the agent's totals of the named counters; diff compares them, and sees their absence as drift", async () => {
    const args = [MAIN, 'top', '--mode', 'nftables', '--metrics-bind-address', METRICS, '--interval', '500ms', '--iterations', '3'];
    const r = await withTraffic(cluster, cluster.exec(node(), process.execPath, args, { timeoutMs: 30_000 }));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("pkts: new TCP connections and UDP flows, as the endpoint chains' named counters count them");
    expect(r.stdout).toContain(`IPv4 table ip kube-proxy via ${METRICS}`);
    expect(r.stdout).toMatch(/^ {2}10\.244\.1\.4:8080 +0\.0 +0 +- +0/m);
    expect(r.stdout).toMatch(/^ {2}10\.244\.1\.[23]:8080 +[1-9][\d.]* +\S+ +\d+%/m);
    // TOTAL is the agent's running total: it never falls, though the agent zeroes the kernel's counter every 500 ms.
    const totals = [...r.stdout.matchAll(/^ {2}10\.244\.1\.2:8080 +\S+ +\S+ +\S+ +(\d+)/gm)].map((m) => Number(m[1]));
    expect(totals).toHaveLength(3);
    expect(totals).toEqual([...totals].sort((a, b) => a - b));
    expect(totals[2]).toBeGreaterThan(0);

    const common = ['--objects', dir, '--hostname-override', 'node-1', '--cluster-cidr', '10.244.0.0/16'];
    const same = await cluster.exec(node(), process.execPath, [MAIN, 'diff', '--mode=nftables', '--traffic-counters', ...common]);
    expect(same.code, same.stdout + same.stderr).toBe(0);
    expect(same.stdout).toContain('converged: table ip kube-proxy holds exactly the desired chains, rules, sets, elements and counters');
    const without = await cluster.exec(node(), process.execPath, [MAIN, 'diff', '--mode=nftables', ...common]);
    expect(without.code).toBe(1);
    expect(without.stdout).toMatch(/counter endpoint-\S+ns1\/web\/tcp\/p80__10\.244\.1\.2\/8080: in the kernel but not desired/);
  });

  it("an endpoint's counter goes with its chain, and its series with it", async () => {
    const gone = (await kernelCounters()).find((n) => n.includes('10.244.1.3/8080'))!;
    await writeObjects(objects(['10.244.1.2']));
    await waitFor('the counter deleted', async () => !(await kernelCounters()).includes(gone), 20_000);
    await waitFor('the series gone', async () => !(await packets('ns1/web:p80')).has('10.244.1.3:8080'), 5000);
    await writeObjects(objects());
    await waitFor('back', async () => (await packets('ns1/web:p80')).size === 2, 10_000);
    expect((await packets('ns1/web:p80')).get('10.244.1.3:8080')).toBe(0);
  });

  it("keeps the totals when the table is deleted from outside: the repaired table's counters add to them", async () => {
    const ns = node();
    const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
    const first = sum(await packets('ns1/web:p80'));
    expect((await request(cluster, cluster.client!.ns, { proto: 'tcp', ip: '172.30.0.10', port: 80, count: 10 })).every((r) => r.ok)).toBe(true);
    await waitFor('the totals not zero', async () => sum(await packets('ns1/web:p80')) >= first + 10, 5000);
    // Nothing counted since the agent's last reading (a deletion loses that), then the totals as they stand.
    await readAll();
    const before = await packets('ns1/web:p80');
    expect(before.size).toBe(2);
    expect((await cluster.exec(ns, 'nft', ['delete', 'table', 'ip', 'kube-proxy'])).code).toBe(0);
    await waitFor('the table made again', async () => (await kernelCounters()).length > 0, 20_000);
    const results = await request(cluster, cluster.client!.ns, { proto: 'tcp', ip: '172.30.0.10', port: 80, count: 10, timeoutMs: 2000 });
    expect(results.every((r) => r.ok)).toBe(true);
    const hits = podsHit(results);
    const want = new Map([
      ['10.244.1.2:8080', before.get('10.244.1.2:8080')! + (hits.get('pod-a') ?? 0)],
      ['10.244.1.3:8080', before.get('10.244.1.3:8080')! + (hits.get('pod-b') ?? 0)],
    ]);
    await waitFor(
      'the totals going on',
      async () => show(await packets('ns1/web:p80')) === show(want),
      10_000,
      () => show(want),
    );
  });

  it('traffic while the agent is down is counted by the next one, whose first sync rewrites every chain', async () => {
    await readAll();
    await agent!.stop();
    agent = null;
    // The rules stay in the kernel without the agent (as upstream's): the connections are DNATed and counted.
    const results = await request(cluster, cluster.client!.ns, { proto: 'tcp', ip: '172.30.0.10', port: 80, count: 20, timeoutMs: 2000 });
    expect(results.every((r) => r.ok)).toBe(true);
    const hits = podsHit(results);
    agent = await startAgent();
    const want = new Map([
      ['10.244.1.2:8080', hits.get('pod-a') ?? 0],
      ['10.244.1.3:8080', hits.get('pod-b') ?? 0],
    ]);
    await waitFor(
      'the connections made while it was down',
      async () => show(await packets('ns1/web:p80')) === show(want),
      10_000,
      () => show(want),
    );
    expect(agent.output()).not.toMatch(/"level":"(error|warn)"|^[EW]\d{4}/m);
  });
});
