/**
 * The agent end to end in nftables mode: client-node informers against the
 * in-process fake API server, the real `nft` in node-1's namespace, real
 * traffic from an outside client. The agent starts in iptables mode, switches
 * to nftables (the iptables rules go), follows an endpoint change with a
 * partial transaction carrying only the delta, drops traffic to unallocated
 * ClusterIPs once a ServiceCIDR is created, rebuilds a table deleted from
 * outside, switches back (the nftables tables go), --cleanup removes the
 * tables; then the real process in nftables mode exits 0 on SIGTERM and
 * leaves its rules. Every convergence wait is bounded and its time printed.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIptables } from '../iptables/restore.ts';
import { Nft } from '../nftables/nft.ts';
import type { NftablesMode } from '../nftables/nftables-mode.ts';
import { silentLogger } from '../proxier/log.ts';
import { startAgent, type Agent } from '../src/agent.ts';
import { runCommand } from '../src/cmd/run.ts';
import { liveLocalAddresses } from '../src/cmd/trace-packet.ts';
import { runCli } from '../src/commands.ts';
import { configFromFlags } from '../src/config.ts';
import type { FlagValue } from '../src/flags.ts';
import { realClock } from '../src/system/clock.ts';
import { startAgentProcess, waitFor } from './agent-runner.ts';
import { makeEndpointSlice, makeNode, makeService, makeServiceCIDR } from './builders.ts';
import { FakeApiServer, kubeConfigFor } from './fake-apiserver.ts';
import { createCluster, type Cluster } from './netns/cluster.ts';
import type { PodServers } from './netns/servers.ts';
import { podsHit, request, requestFromNode } from './netns/traffic.ts';

const SVC_IP = '172.30.0.10';
const NODE_IP = '192.168.50.11';
const NODE_PORT = 30080;
let cluster: Cluster;
let servers: PodServers;
let api: FakeApiServer;
let agent: Agent | null = null;

const pods = { 'pod-a': '10.244.1.2', 'pod-b': '10.244.1.3', 'pod-c': '10.244.2.2' } as const;
type Pod = keyof typeof pods;
const slice = (on: Pod[]) =>
  makeEndpointSlice('ns1', 'web', 'web-s1', {
    endpoints: on.map((p) => ({ ip: pods[p], nodeName: p === 'pod-c' ? 'node-2' : 'node-1' })),
    ports: [
      { name: 'p80', port: 8080 },
      { name: 'dns', port: 8080, protocol: 'UDP' },
    ],
  });
const SERVICE = makeService('ns1', 'web', {
  type: 'NodePort',
  clusterIP: SVC_IP,
  ports: [
    { name: 'p80', port: 80, targetPort: 8080, nodePort: NODE_PORT },
    { name: 'dns', port: 53, targetPort: 8080, protocol: 'UDP' },
  ],
});
const NODE = makeNode('node-1', { addresses: [NODE_IP], podCIDR: '10.244.1.0/24' });

const nodeNs = () => cluster.node('node-1').ns;
const runner = () => cluster.runnerIn(nodeNs());
const nft = () => new Nft(runner());

/** 12 requests from the outside client, every one answered by the wanted pods and no other. */
const reaches =
  (want: Pod[], ip = SVC_IP, port = 80, proto: 'tcp' | 'udp' = 'tcp') =>
  async () => {
    const hit = podsHit(await request(cluster, cluster.client!.ns, { proto, ip, port, count: 12, timeoutMs: 800 }));
    return [...hit.keys()].sort().join() === [...want].sort().join() && [...hit.values()].reduce((a, b) => a + b, 0) === 12;
  };

async function iptablesKubeChains(): Promise<string[]> {
  const text = await createIptables({ family: 'IPv4', backend: 'nft', runner: runner() }).save(['nat', 'filter', 'mangle']);
  return [...new Set(text.match(/^:KUBE-(?!FIREWALL)[A-Z0-9-]+/gm) ?? [])];
}

async function metric(name: string): Promise<number> {
  const text = await agent!.metrics.registry.metrics();
  const line = text.split('\n').find((l) => l.startsWith(name));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

async function start(mode: 'iptables' | 'nftables'): Promise<Agent> {
  const flags: [string, FlagValue][] = [
    ['mode', mode],
    ['hostname-override', 'node-1'],
    ['cluster-cidr', '10.244.0.0/16'],
    ['iptables-min-sync-period', 0],
    ['iptables-sync-period', 2000],
    ['healthz-bind-address', '127.0.0.1:0'],
    ['metrics-bind-address', '127.0.0.1:0'],
  ];
  agent = await startAgent(configFromFlags(new Map(flags)), {
    runner: runner(),
    clock: realClock,
    logger: silentLogger(),
    osHostname: () => 'node-1',
    kubeConfig: () => kubeConfigFor(api),
    iptablesBackend: 'nft',
    serviceHealthHosts: ['127.0.0.1'],
    // node-1's interfaces, not this process's namespace's: --nodeport-addresses ("primary" here) selects among them.
    interfaceAddresses: () => liveLocalAddresses(runner()),
  });
  return agent;
}

/** What a command run on node-1 gets: its output into `out`, node-1's runner, the fake API server. */
function cliIo(out: string[]) {
  return {
    stdout: (t: string) => void out.push(t),
    stderr: (t: string) => void out.push(t),
    makeLogger: () => silentLogger(),
    runner: runner(),
    interfaceAddresses: () => liveLocalAddresses(runner()),
    osHostname: () => 'node-1',
    kubeConfig: () => kubeConfigFor(api),
  };
}

async function stop(): Promise<void> {
  await agent?.stop();
  agent = null;
}

beforeAll(async () => {
  cluster = await createCluster({
    prefix: 'kptnft',
    client: true,
    nodes: [
      {
        name: 'node-1',
        podCIDR: '10.244.1.0/24',
        pods: [
          { name: 'pod-a', ip: pods['pod-a'] },
          { name: 'pod-b', ip: pods['pod-b'] },
        ],
      },
      { name: 'node-2', podCIDR: '10.244.2.0/24', pods: [{ name: 'pod-c', ip: pods['pod-c'] }] },
    ],
  });
  servers = await cluster.startPodServers({ tcp: [8080], udp: [8080] });
  api = await FakeApiServer.start();
  api.create('nodes', NODE as never);
  api.create('services', SERVICE as never);
  api.create('endpointslices', slice(['pod-a', 'pod-b']) as never);
});

afterAll(async () => {
  await stop();
  await api?.close();
  await servers?.stop();
  await cluster?.destroy();
});

describe('the agent in nftables mode against the fake API server', () => {
  it('switches from iptables mode: the iptables rules go, ClusterIP (TCP, UDP) and NodePort traffic reaches the pods', async () => {
    await start('iptables');
    await waitFor('iptables mode programmed', reaches(['pod-a', 'pod-b']));
    expect(await iptablesKubeChains()).toContain(':KUBE-SERVICES');
    expect(await nft().list('ip')).toBeNull();
    await stop();

    const a = await start('nftables');
    expect(a.mode.name).toBe('nftables');
    expect(await iptablesKubeChains()).toEqual([]);
    await waitFor('ClusterIP over nftables', reaches(['pod-a', 'pod-b']));
    await waitFor('UDP ClusterIP over nftables', reaches(['pod-a', 'pod-b'], SVC_IP, 53, 'udp'));
    await waitFor('NodePort on the primary node IP', reaches(['pod-a', 'pod-b'], NODE_IP, NODE_PORT));
    const table = (await nft().list('ip'))!;
    expect(table.sets.find((s) => s.name === 'nodeport-ips')?.elements?.map((e) => e.key)).toEqual([NODE_IP]);
    expect(await nft().list('ip6')).not.toBeNull();
    expect(await metric('kubeproxy_sync_full_proxy_rules_duration_seconds_count{ip_family="IPv4"}')).toBeGreaterThan(0);
  });

  it('follows an endpoint change with a partial transaction that carries only the delta', async () => {
    const mode = agent!.mode as NftablesMode;
    const partialBefore = await metric('kubeproxy_sync_partial_proxy_rules_duration_seconds_count{ip_family="IPv4"}');
    api.update('endpointslices', slice(['pod-c']) as never);
    await waitFor('endpoint change', reaches(['pod-c']));
    // The sync's metrics are observed when it returns, after the conntrack cleanup of the UDP endpoints it removed: the
    // traffic can follow the new rules a moment before.
    await waitFor(
      'the partial sync counted',
      async () => (await metric('kubeproxy_sync_partial_proxy_rules_duration_seconds_count{ip_family="IPv4"}')) > partialBefore,
      5000,
    );
    const plan = mode.lastPlan('IPv4')!;
    expect(plan.full).toBe(false);
    // Upstream's TestSyncProxyRulesRepeated counts: a handful of operations, none on the fixed objects.
    expect(plan.operations).toBeLessThan(30);
    expect(plan.text).not.toMatch(/add table|cluster-ips-check|filter-input|masquerading/);
    expect(plan.text).toContain(pods['pod-c']);
  });

  it('drops traffic to an unallocated ClusterIP once a ServiceCIDR is created (a partial sync), and lets it through again when it is deleted (upstream OnServiceCIDRsChanged)', async () => {
    const mode = agent!.mode as NftablesMode;
    const dropRules = async (): Promise<string[]> => {
      const r = await cluster.exec(nodeNs(), 'nft', ['list', 'chain', 'ip', 'kube-proxy', 'cluster-ips-check']);
      expect(r.code).toBe(0);
      return r.stdout.split('\n').filter((l) => l.includes('unallocated'));
    };
    expect(await dropRules()).toEqual([]);
    // An address of the ServiceCIDR that no Service holds, made reachable: pod-a has it too, and node-1 routes it there.
    const UNALLOCATED = '172.30.0.99';
    expect((await cluster.exec(cluster.pod('pod-a').ns, 'ip', ['addr', 'add', `${UNALLOCATED}/32`, 'dev', 'eth0'])).code).toBe(0);
    expect((await cluster.exec(nodeNs(), 'ip', ['route', 'add', `${UNALLOCATED}/32`, 'dev', cluster.node('node-1').bridge])).code).toBe(0);
    // From node-1 itself (filter output) and from the outside client (filter forward).
    const unallocated = async (): Promise<string[]> => {
      const from = [
        ...(await requestFromNode(cluster, 'node-1', { proto: 'tcp', ip: UNALLOCATED, port: 8080, count: 2, timeoutMs: 500 })),
        ...(await request(cluster, cluster.client!.ns, { proto: 'tcp', ip: UNALLOCATED, port: 8080, count: 2, timeoutMs: 500 })),
      ];
      return from.map((r) => (r.ok ? r.pod : r.error));
    };
    expect(await unallocated()).toEqual(['pod-a', 'pod-a', 'pod-a', 'pod-a']);
    api.create('servicecidrs', makeServiceCIDR('kubernetes', ['172.30.0.0/16', 'fd00:172:30::/112']) as never);
    await waitFor('drop rule in the kernel', async () => (await dropRules()).length === 1, 3000);
    expect((await dropRules())[0]).toMatch(/ip daddr 172\.30\.0\.0\/16 drop comment "Drop traffic to unallocated ClusterIPs"/);
    const plan = mode.lastPlan('IPv4')!;
    expect(plan.full).toBe(false);
    expect(plan.text).toContain('flush chain ip kube-proxy cluster-ips-check');
    expect(plan.text).not.toMatch(/add table|filter-input|masquerading|service-ips/);
    // The IPv6 table got its own family's CIDR.
    const v6 = await cluster.exec(nodeNs(), 'nft', ['list', 'chain', 'ip6', 'kube-proxy', 'cluster-ips-check']);
    expect(v6.stdout).toMatch(/ip6 daddr fd00:172:30::\/112 drop/);
    // `diff` lists the ServiceCIDRs from the API server too: the live table is what it expects.
    const out: string[] = [];
    const diffIo = cliIo(out);
    // At once: the endpoint change's flushed chains, if not deleted yet, are reported as awaiting deletion, not as drift.
    const diff = ['diff', '--mode=nftables', '--hostname-override=node-1', '--cluster-cidr=10.244.0.0/16'];
    const code = await runCli(diff, diffIo);
    expect(code, out.join('')).toBe(0);
    expect(out.join('')).toMatch(/converged|no difference/i);
    // Dropped now; the allocated ClusterIP still answers.
    expect(await unallocated()).toEqual(['timeout', 'timeout', 'timeout', 'timeout']);
    expect(await reaches(['pod-c'])()).toBe(true);

    api.delete('servicecidrs', 'kubernetes');
    await waitFor('drop rule gone', async () => (await dropRules()).length === 0, 3000);
    expect(await unallocated()).toEqual(['pod-a', 'pod-a', 'pod-a', 'pod-a']);
    await cluster.exec(nodeNs(), 'ip', ['route', 'del', `${UNALLOCATED}/32`]);
    await cluster.exec(cluster.pod('pod-a').ns, 'ip', ['addr', 'del', `${UNALLOCATED}/32`, 'dev', 'eth0']);
  });

  it('on a 1.31-1.32 API server (ServiceCIDRs served as v1beta1 only) writes the drop rule from the v1beta1 ServiceCIDRs, as upstream kube-proxy of those releases', async () => {
    const dropRules = async (): Promise<string[]> =>
      (await cluster.exec(nodeNs(), 'nft', ['list', 'chain', 'ip', 'kube-proxy', 'cluster-ips-check'])).stdout
        .split('\n')
        .filter((l) => l.includes('unallocated'));
    expect(await dropRules()).toEqual([]);
    // The server now plays 1.32: v1 answers 404. The agent's ServiceCIDR watch (on v1) is cut and resumed against it.
    api.serviceCIDRVersions = ['networking.k8s.io/v1beta1'];
    try {
      api.dropWatches('servicecidrs');
      api.create('servicecidrs', makeServiceCIDR('kubernetes', ['172.30.0.0/16']) as never);
      await waitFor('drop rule from the v1beta1 ServiceCIDR', async () => (await dropRules()).length === 1, 8000);
      expect((await dropRules())[0]).toMatch(/ip daddr 172\.30\.0\.0\/16 drop comment "Drop traffic to unallocated ClusterIPs"/);
      expect(api.requests({ resource: 'servicecidrs', verb: 'watch' }).at(-1)!.path).toBe('/apis/networking.k8s.io/v1beta1/servicecidrs');
      expect(await reaches(['pod-c'])()).toBe(true);
      api.delete('servicecidrs', 'kubernetes');
      await waitFor('drop rule gone', async () => (await dropRules()).length === 0, 3000);
    } finally {
      api.serviceCIDRVersions = ['networking.k8s.io/v1'];
    }
  });

  it('shows the service port chains on /debug/services and the whole table on /debug/rules, as nft -f input the kernel takes', async () => {
    const url = agent!.metricsServer!.url;
    const services = await (await fetch(`${url}/debug/services?family=IPv4`)).text();
    const block = services.slice(services.indexOf('ns1/web:p80 TCP'));
    expect(block).toMatch(/^ns1\/web:p80 TCP 172\.30\.0\.10:80 nodePort 30080\n  service-\S+-ns1\/web\/tcp\/p80 external-\S+-ns1\/web\/tcp\/p80 /);
    // Generation B (upstream v1.36+) DNATs from the service chain's numgen map: no endpoint chain to name without session
    // affinity (or --traffic-counters), the endpoint's own object is its entry in that map (numgen's 0 picks it).
    expect(block).toMatch(/\n  10\.244\.2\.2:8080 +ready +node-2 +service-\S+-ns1\/web\/tcp\/p80 map\[0\]\n/);
    expect(block).not.toContain('endpoint-');
    const rules = (await (await fetch(`${url}/debug/rules?family=IPv4&format=json`)).json()) as [{ applied: { text: string } }];
    const text = rules[0].applied.text;
    expect(text).toContain('dnat ip addr . port to numgen random mod 1 map { 0 : 10.244.2.2 . 8080 }');
    // The same text under another table name: the kernel checks it whole, self-contained (nothing is committed).
    await nft().check(text.replaceAll(' ip kube-proxy ', ' ip kpt-debug-check '));
    expect(await cluster.exec(nodeNs(), 'nft', ['list', 'table', 'ip', 'kpt-debug-check'])).toMatchObject({ code: 1 });
  });

  it('rebuilds its table within the sync period after someone deletes it', async () => {
    const r = await cluster.exec(nodeNs(), 'nft', ['delete', 'table', 'ip', 'kube-proxy']);
    expect(r.code).toBe(0);
    expect(await nft().list('ip')).toBeNull();
    // monitor() looks every sync period (2 s); the full sync that follows is a cold start of one service.
    await waitFor('table rebuilt', async () => (await nft().list('ip')) !== null, 3500);
    await waitFor('traffic flowing again', reaches(['pod-c']), 5000);
    // Counted for operators to alert on (kubeproxy_ts_outside_changes_total, kube-proxy-ts's own metric).
    expect(await metric('kubeproxy_ts_outside_changes_total{ip_family="IPv4",kind="table"}')).toBe(1);
  });

  it('repairs within the sync period a base chain someone re-created at another priority and a policy drop set on another (upstream: every later full sync refused until a restart)', async () => {
    const outside = [
      'flush chain ip kube-proxy nat-prerouting',
      'delete chain ip kube-proxy nat-prerouting',
      'add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority 50 ; }',
      'add chain ip kube-proxy filter-forward { type filter hook forward priority 0 ; policy drop ; }',
    ];
    expect(await cluster.exec(nodeNs(), 'nft', [outside.join('; ')])).toMatchObject({ code: 0 });
    const bases = async () => (await nft().listNames('ip'))!.baseChains!.filter((b) => b.name === 'nat-prerouting' || b.name === 'filter-forward');
    expect(await bases()).toEqual([
      { name: 'filter-forward', type: 'filter', hook: 'forward', priority: 0, policy: 'drop' },
      { name: 'nat-prerouting', type: 'nat', hook: 'prerouting', priority: 50, policy: 'accept' },
    ]);
    const fullBefore = await metric('kubeproxy_sync_full_proxy_rules_duration_seconds_count{ip_family="IPv4"}');
    await waitFor(
      'base chains as written',
      async () =>
        JSON.stringify(await bases()) ===
        JSON.stringify([
          { name: 'filter-forward', type: 'filter', hook: 'forward', priority: 0, policy: 'accept' },
          { name: 'nat-prerouting', type: 'nat', hook: 'prerouting', priority: -100, policy: 'accept' },
        ]),
      3500,
    );
    await waitFor('traffic flowing again', reaches(['pod-c']), 5000);
    expect(await metric('kubeproxy_ts_outside_changes_total{ip_family="IPv4",kind="rules"}')).toBe(1);
    // Observed when the sync returns, a moment after the kernel has its rules.
    const fullSyncs = () => metric('kubeproxy_sync_full_proxy_rules_duration_seconds_count{ip_family="IPv4"}');
    await waitFor('the full sync counted', async () => (await fullSyncs()) > fullBefore, 5000);
    expect(await fullSyncs()).toBe(fullBefore + 1);
    const mode = agent!.mode as NftablesMode;
    expect(await mode.damage('IPv4')).toEqual([]);
  });

  it('switches back to iptables mode: the nftables tables go; --cleanup removes every mode', async () => {
    await stop();
    await start('iptables');
    expect(await nft().list('ip')).toBeNull();
    expect(await nft().list('ip6')).toBeNull();
    await waitFor('iptables mode again', reaches(['pod-c']));
    await stop();

    await start('nftables');
    await waitFor('nftables mode again', reaches(['pod-c']));
    await stop();
    expect(await runCommand(['--cleanup'], cliIo([]))).toBe(0);
    expect(await nft().list('ip')).toBeNull();
    expect(await nft().list('ip6')).toBeNull();
    expect(await iptablesKubeChains()).toEqual([]);
  });
});

describe('kube-proxy-ts --mode=nftables as a process', () => {
  it('programs --objects, exits 0 on SIGTERM and leaves its table in place', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kpt-nft-objects-'));
    try {
      await writeFile(join(dir, 'cluster.yaml'), [NODE, SERVICE, slice(['pod-a'])].map((d) => dump(d)).join('---\n'));
      const args = [
        '--mode=nftables',
        '--objects',
        dir,
        '--hostname-override=node-1',
        '--cluster-cidr=10.244.0.0/16',
        '--iptables-min-sync-period=0s',
      ];
      const proc = await startAgentProcess(nodeNs(), [...args, '--healthz-bind-address=127.0.0.1:0', '--metrics-bind-address='], reaches(['pod-a']));
      expect(await proc.stop()).toBe(0);
      expect(proc.output()).toContain('rules left in place');
      expect(await nft().list('ip')).not.toBeNull();
      expect(await reaches(['pod-a'])()).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
