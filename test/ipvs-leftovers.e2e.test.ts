/**
 * A node that ran upstream kube-proxy in ipvs mode (upstream deprecates it; its users move to the iptables or
 * nftables mode): its iptables rules in both families (the shapes pkg/proxy/ipvs writes, matching its ipsets),
 * the ipsets of both families, and kube-ipvs0. The real kube-proxy-ts process starts there in each mode, and
 * `--cleanup` runs there: the ipvs mode's own chains and their jumps go in every mode, the ipsets once no rule
 * matches them (at once in the nftables mode and with --cleanup; in the iptables mode, whose first sync rewrites
 * the KUBE-SERVICES and KUBE-POSTROUTING the two modes share, at the next start), and traffic reaches the pods.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { dump } from 'js-yaml';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { IPVS_IPSET_NAMES, ipv6SetName } from '../src/ipvs-leftovers.ts';
import { startAgentProcess, waitFor, type AgentProcess } from './agent-runner.ts';
import { makeEndpointSlice, makeNode, makeService } from './builders.ts';
import { logLines } from './log-lines.ts';
import { createCluster, NODE_1_TWO_PODS, type Cluster } from './netns/cluster.ts';
import type { PodServers } from './netns/servers.ts';
import { podsHit, request } from './netns/traffic.ts';

const MAIN = new URL('../src/main.ts', import.meta.url).pathname;
const SVC_IP = '172.30.0.10';
const NODE_IP = '192.168.50.11';
const NODE_PORT = 30080;

/** pkg/proxy/ipvs ipsetInfo with each set's type; the IPv6 sets are KUBE-6-... */
const SETS: readonly (readonly [string, string])[] = [
  ['KUBE-LOOP-BACK', 'hash:ip,port,ip'],
  ['KUBE-CLUSTER-IP', 'hash:ip,port'],
  ['KUBE-EXTERNAL-IP', 'hash:ip,port'],
  ['KUBE-EXTERNAL-IP-LOCAL', 'hash:ip,port'],
  ['KUBE-LOAD-BALANCER', 'hash:ip,port'],
  ['KUBE-LOAD-BALANCER-FW', 'hash:ip,port'],
  ['KUBE-LOAD-BALANCER-LOCAL', 'hash:ip,port'],
  ['KUBE-LOAD-BALANCER-SOURCE-IP', 'hash:ip,port,ip'],
  ['KUBE-LOAD-BALANCER-SOURCE-CIDR', 'hash:ip,port,net'],
  ['KUBE-NODE-PORT-TCP', 'bitmap:port'],
  ['KUBE-NODE-PORT-LOCAL-TCP', 'bitmap:port'],
  ['KUBE-NODE-PORT-UDP', 'bitmap:port'],
  ['KUBE-NODE-PORT-LOCAL-UDP', 'bitmap:port'],
  ['KUBE-NODE-PORT-SCTP-HASH', 'hash:ip,port'],
  ['KUBE-NODE-PORT-LOCAL-SCTP-HASH', 'hash:ip,port'],
  ['KUBE-HEALTH-CHECK-NODE-PORT', 'bitmap:port'],
  ['KUBE-IPVS-IPS', 'hash:ip'],
];

/** An ipvs-mode node's rules (pkg/proxy/ipvs syncProxyRules / writeIptablesRules, 1.29+), for one family. */
function ipvsRules(v6: boolean): string {
  const set = (n: string) => (v6 ? ipv6SetName(n) : n);
  const reject = v6 ? 'icmp6-port-unreachable' : 'icmp-port-unreachable';
  return `*nat
:KUBE-SERVICES - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-NODE-PORT - [0:0]
:KUBE-LOAD-BALANCER - [0:0]
:KUBE-MARK-MASQ - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-LOAD-BALANCER -j KUBE-MARK-MASQ
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-NODE-PORT -p tcp -m comment --comment "Kubernetes nodeport TCP port for masquerade purpose" -m set --match-set ${set('KUBE-NODE-PORT-TCP')} dst -j KUBE-MARK-MASQ
-A KUBE-POSTROUTING -m comment --comment "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose" -m set --match-set ${set('KUBE-LOOP-BACK')} dst,dst,src -j MASQUERADE
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
-A KUBE-SERVICES -m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" -m set --match-set ${set('KUBE-CLUSTER-IP')} dst,dst -j KUBE-MARK-MASQ
-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT
-A KUBE-SERVICES -m set --match-set ${set('KUBE-CLUSTER-IP')} dst,dst -j ACCEPT
COMMIT
*filter
:KUBE-FORWARD - [0:0]
:KUBE-NODE-PORT - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-SOURCE-RANGES-FIREWALL - [0:0]
:KUBE-IPVS-FILTER - [0:0]
:KUBE-IPVS-OUT-FILTER - [0:0]
-A INPUT -m comment --comment "kubernetes health check rules" -j KUBE-NODE-PORT
-A INPUT -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-FILTER
-A INPUT -m comment --comment "kube-proxy firewall rules" -j KUBE-PROXY-FIREWALL
-A FORWARD -m comment --comment "kube-proxy firewall rules" -j KUBE-PROXY-FIREWALL
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A OUTPUT -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-OUT-FILTER
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A KUBE-IPVS-FILTER -m set --match-set ${set('KUBE-LOAD-BALANCER')} dst,dst -j RETURN
-A KUBE-IPVS-FILTER -m set --match-set ${set('KUBE-CLUSTER-IP')} dst,dst -j RETURN
-A KUBE-IPVS-FILTER -m set --match-set ${set('KUBE-EXTERNAL-IP')} dst,dst -j RETURN
-A KUBE-IPVS-FILTER -m set --match-set ${set('KUBE-EXTERNAL-IP-LOCAL')} dst,dst -j RETURN
-A KUBE-IPVS-FILTER -m set --match-set ${set('KUBE-HEALTH-CHECK-NODE-PORT')} dst -j RETURN
-A KUBE-IPVS-FILTER -m conntrack --ctstate NEW -m set --match-set ${set('KUBE-IPVS-IPS')} dst -j REJECT --reject-with ${reject}
-A KUBE-NODE-PORT -m comment --comment "Kubernetes health check node port" -m set --match-set ${set('KUBE-HEALTH-CHECK-NODE-PORT')} dst -j ACCEPT
-A KUBE-PROXY-FIREWALL -m set --match-set ${set('KUBE-LOAD-BALANCER-FW')} dst,dst -j KUBE-SOURCE-RANGES-FIREWALL
-A KUBE-SOURCE-RANGES-FIREWALL -m set --match-set ${set('KUBE-LOAD-BALANCER-SOURCE-CIDR')} dst,dst,src -j RETURN
-A KUBE-SOURCE-RANGES-FIREWALL -j DROP
COMMIT
`;
}

const IPVS_ONLY_CHAINS = /^:KUBE-(NODE-PORT|LOAD-BALANCER|SOURCE-RANGES-FIREWALL|IPVS-FILTER|IPVS-OUT-FILTER) /m;

describe("a node that ran upstream's ipvs mode", () => {
  let cluster: Cluster;
  let servers: PodServers;
  let dir: string;
  let agent: AgentProcess | null = null;
  /** Whether this kernel has dummy devices (kube-ipvs0's kind); without, a veth stands in and must be left alone. */
  let dummy = false;

  const ns = () => cluster.node('node-1').ns;
  const run = (cmd: string, args: readonly string[], input?: string) => cluster.exec(ns(), cmd, args, input === undefined ? {} : { input });
  const exec = async (cmd: string, args: readonly string[], input?: string) => {
    const r = await run(cmd, args, input);
    if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
    return r.stdout;
  };
  const ipvsSets = async () => (await exec('ipset', ['list', '-n'])).split('\n').filter((n) => IPVS_IPSET_NAMES.has(n));
  const saves = async () => (await exec('iptables-nft-save', [])) + (await exec('ip6tables-nft-save', []));
  const reaches = (ip: string, port: number) => async () => {
    const hit = podsHit(await request(cluster, cluster.client!.ns, { proto: 'tcp', ip, port, count: 6, timeoutMs: 800 }));
    return hit.size === 1 && hit.get('pod-a') === 6;
  };
  const reachesBoth = async () => (await reaches(SVC_IP, 80)()) && (await reaches(NODE_IP, NODE_PORT)());
  const start = (mode: string, ready: () => Promise<boolean>) =>
    startAgentProcess(
      ns(),
      [
        `--proxy-mode=${mode}`,
        '--objects',
        dir,
        '--hostname-override=node-1',
        '--cluster-cidr=10.244.0.0/16',
        '--healthz-bind-address=127.0.0.1:0',
        '--metrics-bind-address=',
      ],
      ready,
    );

  beforeAll(async () => {
    cluster = await createCluster({ prefix: 'kptipvs', client: true, nodes: [NODE_1_TWO_PODS] });
    servers = await cluster.startPodServers({ tcp: [8080] });
    dir = await mkdtemp(join(tmpdir(), 'kpt-ipvs-'));
    const objects = [
      makeNode('node-1', { addresses: [NODE_IP], podCIDR: '10.244.1.0/24' }),
      makeService('ns1', 'web', { type: 'NodePort', clusterIP: SVC_IP, ports: [{ name: 'p80', port: 80, targetPort: 8080, nodePort: NODE_PORT }] }),
      makeEndpointSlice('ns1', 'web', 'web-1', { endpoints: [{ ip: '10.244.1.2', nodeName: 'node-1' }], ports: [{ name: 'p80', port: 8080 }] }),
    ];
    await writeFile(join(dir, 'cluster.yaml'), objects.map((d) => dump(d)).join('---\n'));
  }, 60_000);

  /** The ipvs mode's leftovers, afresh: ipsets, rules in both families, and kube-ipvs0 holding the ClusterIP. */
  beforeEach(async () => {
    for (const [name, type] of SETS) {
      const range = type === 'bitmap:port' ? ['range', '0-65535'] : [];
      await exec('ipset', ['create', '-exist', name, type, ...range]);
      await exec('ipset', ['create', '-exist', ipv6SetName(name), type, ...(range.length ? range : ['family', 'inet6'])]);
    }
    await exec('iptables-nft-restore', ['--noflush'], ipvsRules(false));
    await exec('ip6tables-nft-restore', ['--noflush'], ipvsRules(true));
    await run('ip', ['link', 'del', 'kube-ipvs0']);
    dummy = (await run('ip', ['link', 'add', 'kube-ipvs0', 'type', 'dummy'])).code === 0;
    if (!dummy) await exec('ip', ['link', 'add', 'kube-ipvs0', 'type', 'veth', 'peer', 'name', 'kube-ipvs0p']);
    expect(await ipvsSets()).toHaveLength(34);
    expect(await saves()).toMatch(IPVS_ONLY_CHAINS);
  });

  afterEach(async () => {
    await agent?.stop();
    agent = null;
  });

  afterAll(async () => {
    await servers?.stop();
    await cluster?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** kube-ipvs0 went if it was ipvs mode's dummy device; a veth of that name (a kernel without dummy devices) stays. */
  async function expectDeviceHandled(output: string): Promise<void> {
    const link = await run('ip', ['link', 'show', 'kube-ipvs0']);
    if (dummy) expect(link.code, 'kube-ipvs0 (dummy) removed').not.toBe(0);
    else {
      expect(link.code, 'a veth named kube-ipvs0 is left alone').toBe(0);
      expect(logLines(output).map((l) => l.msg)).toContain("kube-ipvs0 is not ipvs mode's dummy device (it is veth): left alone");
    }
  }

  it('iptables mode: removes the ipvs-only chains and their jumps at start, carries traffic, and destroys the ipsets at the next start', async () => {
    agent = await start('iptables', reachesBoth);
    const rules = await saves();
    expect(rules).not.toMatch(IPVS_ONLY_CHAINS);
    expect(rules).not.toMatch(/ipvs access filter|health check rules|--match-set/);
    await expectDeviceHandled(agent.output());
    // KUBE-SERVICES and KUBE-POSTROUTING still matched some when the agent started: they are left for the next start.
    const left = await ipvsSets();
    expect(left.length).toBeGreaterThan(0);
    expect(left.length).toBeLessThan(34);
    expect(logLines(agent.output()).map((l) => l.msg)).toContain(
      `${left.length} ipsets of ipvs mode are still matched by rules (KUBE-SERVICES until the first sync): left for the next start`,
    );
    expect(await agent.stop()).toBe(0);
    // The rules left in place carry traffic at once: wait for the new agent to have cleaned.
    agent = await start('iptables', reachesBoth);
    await waitFor(
      'the ipsets destroyed at the next start',
      async () => (await ipvsSets()).length === 0,
      20_000,
      () => agent!.output(),
    );
    // The line comes after the last `ipset destroy`, which the wait above may see first.
    await waitFor(
      'the destroyed ipsets logged',
      async () => logLines(agent!.output()).some((l) => l.msg === `destroyed ${left.length} ipsets of ipvs mode`),
      5_000,
      () => agent!.output(),
    );
  });

  it('nftables mode: every iptables chain of kube-proxy goes, and every ipset, at start; traffic goes through the nftables table', async () => {
    agent = await start('nftables', reachesBoth);
    expect(await saves()).not.toMatch(/KUBE-(?!FIREWALL)/);
    expect(await ipvsSets()).toEqual([]);
    await expectDeviceHandled(agent.output());
  });

  it('--cleanup removes all of it, both families of ipsets included (upstream destroys the IPv4 ones only)', async () => {
    const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile('ip', ['netns', 'exec', ns(), process.execPath, MAIN, '--cleanup'], { timeout: 60_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      ),
    );
    expect([r.code, r.stdout.split('\n').at(-2)], r.stderr).toEqual([0, 'cleanup done']);
    expect(await saves()).not.toMatch(/KUBE-(?!FIREWALL)/);
    expect(await ipvsSets()).toEqual([]);
    await expectDeviceHandled(r.stdout);
  });
});
