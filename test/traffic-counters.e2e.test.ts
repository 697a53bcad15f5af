/**
 * What operators see of the traffic, for real: the agent process in a node
 * namespace with --traffic-counters, real TCP connections through a
 * ClusterIP, and
 * - kubeproxy_ts_endpoint_packets_total moving by exactly the connections
 *   each endpoint answered, and not at all for an endpoint that got none;
 * - /debug/services and /debug/rules answering from the running agent;
 * - `kube-proxy-ts top` on a real pseudo-terminal (script(1)) redrawing its
 *   screen in place while traffic flows.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgentProcess, waitFor, type AgentProcess } from './agent-runner.ts';
import { makeEndpointSlice, makeNode, makeService } from './builders.ts';
import { createCluster, type Cluster } from './netns/cluster.ts';
import type { PodServers } from './netns/servers.ts';
import { endpointPackets, expectConnectionsCounted, METRICS, metricsGet, trafficCluster, withTraffic } from './traffic-counters.case.ts';

const MAIN = new URL('../src/main.ts', import.meta.url).pathname;
let cluster: Cluster;
let servers: PodServers;
let dir: string;
let agent: AgentProcess;

const objects = [
  makeNode('node-1', { addresses: ['192.168.50.11'], podCIDR: '10.244.1.0/24' }),
  makeService('ns1', 'web', { clusterIP: '172.30.0.10', ports: [{ name: 'p80', port: 80, targetPort: 8080 }] }),
  makeEndpointSlice('ns1', 'web', 'web-1', {
    endpoints: [
      { ip: '10.244.1.2', nodeName: 'node-1' },
      { ip: '10.244.1.3', nodeName: 'node-1' },
    ],
    ports: [{ name: 'p80', port: 8080 }],
  }),
  makeService('ns1', 'other', { clusterIP: '172.30.0.20', ports: [{ name: 'p80', port: 80, targetPort: 8080 }] }),
  makeEndpointSlice('ns1', 'other', 'other-1', { endpoints: [{ ip: '10.244.1.4', nodeName: 'node-1' }], ports: [{ name: 'p80', port: 8080 }] }),
];

const get = (path: string) => metricsGet(cluster, path);
const packets = (service: string) => endpointPackets(cluster, service);

beforeAll(async () => {
  cluster = await createCluster(trafficCluster('kpttraf'));
  servers = await cluster.startPodServers({ tcp: [8080] });
  dir = await mkdtemp(join(tmpdir(), 'kpt-traffic-'));
  await writeFile(join(dir, 'cluster.yaml'), objects.map((d) => dump(d)).join('---\n'));
  agent = await startAgentProcess(
    cluster.node('node-1').ns,
    [
      '--objects',
      dir,
      '--hostname-override',
      'node-1',
      '--cluster-cidr',
      '10.244.0.0/16',
      '--iptables-min-sync-period',
      '0s',
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
}, 60_000);

afterAll(async () => {
  await agent?.stop();
  await servers?.stop();
  await cluster?.destroy();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('--traffic-counters with real traffic (kubernetes/kubernetes#18519)', () => {
  it('moves the counter of each endpoint by the connections it answered, and not that of an endpoint that got none', async () => {
    await expectConnectionsCounted(cluster);
    const metrics = (await get('/metrics')).body;
    expect(metrics).toContain('kubeproxy_ts_endpoint_bytes_total{service="ns1/other:p80",endpoint="10.244.1.4:8080"} 0');
  });

  it('answers /debug/services and /debug/rules from the running agent', async () => {
    const services = await get('/debug/services');
    expect(services.status).toBe(200);
    expect(services.body).toContain('ns1/web:p80 TCP 172.30.0.10:80');
    expect(services.body).toMatch(/^ {2}10\.244\.1\.4:8080 +ready +node-1 \(local\) +KUBE-SEP-\S+ +0 pkts +0 bytes$/m);
    const rules = await get('/debug/rules');
    expect(rules.status).toBe(200);
    expect(rules.body).toMatch(/^# IPv4: applied at \S+ by a (full|partial) sync/m);
    expect(rules.body).toMatch(/^-A KUBE-SERVICES -m comment --comment "ns1\/web:p80 cluster IP" .*-d 172\.30\.0\.10 --dport 80 -j KUBE-SVC-/m);
    expect(rules.body).toContain('# IPv4: no refused input');
    console.log(`/debug/rules, the IPv4 part:\n${rules.body.slice(0, rules.body.indexOf('# IPv4: no refused input') + 40)}`);
  });

  it('/debug/rules keeps the input the kernel refused, with its error and the line it named (upstream RestoreAll failure)', async () => {
    const ns = cluster.node('node-1').ns;
    const nat = await cluster.exec(ns, 'iptables-nft-save', ['-t', 'nat']);
    const chain = /^-A (KUBE-SEP-\w+) .*DNAT --to-destination 10\.244\.1\.4:8080/m.exec(nat.stdout)![1]!;
    // A foreign rule jumps to other's endpoint chain: deleting that chain (the service goes) must fail in the kernel.
    for (const args of [
      ['-t', 'nat', '-N', 'FOREIGN'],
      ['-t', 'nat', '-A', 'FOREIGN', '-j', chain],
    ])
      expect((await cluster.exec(ns, 'iptables-nft', args)).code).toBe(0);
    try {
      await writeFile(
        join(dir, 'cluster.yaml'),
        objects
          .slice(0, 3)
          .map((d) => dump(d))
          .join('---\n'),
      );
      // The answer that showed it is the one read: /debug allows 5 at once, then 1 per second, so a request right after
      // the polling could be answered 429.
      let body = '';
      await waitFor(
        'a refused restore on /debug/rules',
        async () => (body = (await get('/debug/rules')).body).includes('# IPv4: REFUSED at'),
        15_000,
      );
      const refused = body.slice(body.indexOf('# IPv4: REFUSED at'));
      expect(refused).toMatch(/^# the line it named, \d+: .*KUBE-SEP-/m);
      expect(refused).toContain(`# -X ${chain}`);
      // What the kernel still holds is shown beside it: other's chains are still in the applied ruleset.
      expect(body.slice(0, body.indexOf('# IPv4: REFUSED at'))).toContain(`:${chain} - [0:0]`);
    } finally {
      for (const args of [
        ['-t', 'nat', '-F', 'FOREIGN'],
        ['-t', 'nat', '-X', 'FOREIGN'],
      ])
        await cluster.exec(ns, 'iptables-nft', args);
      await writeFile(join(dir, 'cluster.yaml'), objects.map((d) => dump(d)).join('---\n'));
    }
    await waitFor('converged again', async () => (await packets('ns1/other:p80')).size === 1, 15_000);
  });

  it('kube-proxy-ts top redraws one screen in place on a pseudo-terminal while traffic flows', async () => {
    const ns = cluster.node('node-1').ns;
    const r = await withTraffic(
      cluster,
      cluster.exec(ns, 'script', ['-q', '-e', '-c', `${process.execPath} ${MAIN} top --interval 500ms --iterations 4`, '/dev/null'], {
        timeoutMs: 30_000,
      }),
    );
    expect(r.code).toBe(0);
    const out = r.stdout;
    expect(out).toContain('\x1b[2J'); // cleared once
    expect(out.split('\x1b[H').length - 1).toBe(4); // then four frames, each from the top left
    const frames = out.split('\x1b[H').slice(1);
    for (const f of frames) expect(f).toContain('kube-proxy-ts top');
    const last = frames.at(-1)!.replace(/\x1b\[[KJ]/g, '');
    expect(last).toMatch(/^ns1\/web:p80 +\d+\.\d/m);
    expect(last).toMatch(/^ {2}10\.244\.1\.2:8080 +\d/m);
    expect(last).toMatch(/^ {2}10\.244\.1\.4:8080 +0\.0 +0 +- +0/m);
    // Some frame saw web's traffic with a share per endpoint.
    expect(frames.some((f) => /^ {2}10\.244\.1\.[23]:8080 +[1-9][\d.]* +\S+ +\d+%/m.test(f))).toBe(true);
    console.log(`top frame on a pseudo-terminal:\n${last}`);
  });
});
