/**
 * The node setup upstream does before it proxies (platformSetup, newProxyServer
 * with --init-only, ProxyServer.Run), by the real process in a node namespace
 * this test makes:
 * - the conntrack sysctls (pkg/proxy/conntrack setSysctls): the timeouts are
 *   the namespace's own and get set; nf_conntrack_max and the module's
 *   hashsize are the host's, read-only from here, so raising them is refused:
 *   the refusal the agent meets in kind-like nodes, named, and survived;
 * - `--init-only`, as an init container runs it before an unprivileged agent:
 *   sets, programs nothing, exits;
 * - the agent's own oom_score_adj, and nothing touched when its kubeconfig
 *   cannot work;
 * - a read-only root filesystem (readOnlyRootFilesystem: true) in nftables
 *   mode, which stages its transactions in a file.
 * The host's values are read before and after: nothing here may change them.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgentProcess, waitFor } from './agent-runner.ts';
import { makeEndpointSlice, makeNode, makeService } from './builders.ts';
import { createCluster, NODE_1_TWO_PODS, type Cluster } from './netns/cluster.ts';
import type { PodServers } from './netns/servers.ts';
import { podsHit, request } from './netns/traffic.ts';
import { complaints, errorLines, logLines } from './log-lines.ts';

const CAP_SYS_RESOURCE = 24;
/** Whether this process (and so the agent it starts) has a capability (the CapEff mask of /proc/self/status). */
function hasCapability(bit: number): boolean {
  const mask = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '0';
  return ((BigInt(`0x${mask}`) >> BigInt(bit)) & 1n) === 1n;
}
const MAIN = new URL('../src/main.ts', import.meta.url).pathname;
const NF = 'net.netfilter.';
const hostValue = async (name: string) => (await readFile(`/proc/sys/${name.replaceAll('.', '/')}`, 'utf8')).trim();
const HOST_SETTINGS = [
  `${NF}nf_conntrack_max`,
  `${NF}nf_conntrack_tcp_timeout_established`,
  `${NF}nf_conntrack_tcp_timeout_close_wait`,
  `${NF}nf_conntrack_udp_timeout`,
  'net.ipv4.conf.all.route_localnet',
];

let cluster: Cluster;
let servers: PodServers;
let dir: string;
let hostBefore: string[];
const ns = () => cluster.node('node-1').ns;
const sysctl = (name: string) => cluster.net.getSysctl(ns(), name);
/** The namespace as a fresh node's kernel has it (Debian's defaults). */
const kernelDefaults = () =>
  cluster.net.setSysctls(ns(), {
    [`${NF}nf_conntrack_tcp_timeout_established`]: 432000,
    [`${NF}nf_conntrack_tcp_timeout_close_wait`]: 60,
    [`${NF}nf_conntrack_udp_timeout`]: 30,
    'net.ipv4.conf.all.route_localnet': 0,
  });

async function kubeProxy(args: readonly string[]): Promise<{ code: number; out: string }> {
  const r = await cluster.runnerIn(ns()).run(process.execPath, [MAIN, ...args], { timeoutMs: 30_000 });
  return { code: r.code, out: r.stdout + r.stderr };
}

/** The agent as a command that first makes its own mount namespace and runs `mounts` (sh) there. */
const afterMounts = (mounts: string) => [
  'unshare',
  '-m',
  '--propagation',
  'private',
  'sh',
  '-c',
  `${mounts} && exec "$0" "$@"`,
  process.execPath,
  MAIN,
];

/** The agent on node-1 with this test's objects file, no metrics server, and `more`. */
const agentArgs = (...more: string[]) => [
  '--objects',
  dir,
  '--hostname-override',
  'node-1',
  '--cluster-cidr',
  '10.244.0.0/16',
  '--metrics-bind-address',
  '',
  ...more,
];

async function reachesPodA(): Promise<boolean> {
  const hit = podsHit(await request(cluster, cluster.client!.ns, { proto: 'tcp', ip: '172.30.0.10', port: 80, count: 2, timeoutMs: 800 }));
  return hit.get('pod-a') === 2;
}

beforeAll(async () => {
  hostBefore = await Promise.all(HOST_SETTINGS.map(hostValue));
  cluster = await createCluster({ prefix: 'kptsetup', client: true, nodes: [NODE_1_TWO_PODS] });
  servers = await cluster.startPodServers({ tcp: [8080] });
  dir = await mkdtemp(join(tmpdir(), 'kpt-setup-'));
  const objects = [
    makeNode('node-1', { addresses: ['192.168.50.11'], podCIDR: '10.244.1.0/24' }),
    makeService('ns1', 'web', { clusterIP: '172.30.0.10', ports: [{ name: 'p80', port: 80, targetPort: 8080 }] }),
    makeEndpointSlice('ns1', 'web', 'web-1', { endpoints: [{ ip: '10.244.1.2', nodeName: 'node-1' }], ports: [{ name: 'p80', port: 8080 }] }),
  ];
  await writeFile(join(dir, 'cluster.yaml'), objects.map((d) => dump(d)).join('---\n'));
}, 60_000);

afterAll(async () => {
  await servers?.stop();
  await cluster?.destroy();
  if (dir) await rm(dir, { recursive: true, force: true });
  // The host's own values are untouched by everything above.
  expect(await Promise.all(HOST_SETTINGS.map(hostValue))).toEqual(hostBefore);
});

describe('node setup by the real process (upstream platformSetup, setSysctls, --init-only)', { timeout: 60_000 }, () => {
  it('--init-only sets upstream’s conntrack timeouts and route_localnet in its namespace, programs nothing and exits 0 (newProxyServer initOnly)', async () => {
    await kernelDefaults();
    const r = await kubeProxy(['--init-only']);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain('System initialized and --init-only specified');
    expect(await sysctl(`${NF}nf_conntrack_tcp_timeout_established`)).toBe('86400');
    expect(await sysctl(`${NF}nf_conntrack_tcp_timeout_close_wait`)).toBe('3600');
    expect(await sysctl('net.ipv4.conf.all.route_localnet')).toBe('1');
    // The host's table (2^18 entries on these machines) is at least upstream's size for 2 CPUs: not written.
    expect(r.out).not.toContain('nf_conntrack_max');
    const nat = await cluster.runnerIn(ns()).run('iptables-save', ['-t', 'nat']);
    expect(nat.stdout).not.toContain('KUBE-SERVICES');
  });

  it('--init-only with a kind/usernetes config (conntrack.maxPerCore: 0, timeouts 0s) leaves every conntrack value as it is', async () => {
    await kernelDefaults();
    const config = join(dir, 'kind-config.yaml');
    await writeFile(
      config,
      [
        'apiVersion: kubeproxy.config.k8s.io/v1alpha1',
        'kind: KubeProxyConfiguration',
        'mode: iptables',
        'conntrack:',
        '  maxPerCore: 0',
        '  tcpEstablishedTimeout: 0s',
        '  tcpCloseWaitTimeout: 0s',
        '',
      ].join('\n'),
    );
    const r = await kubeProxy(['--config', config, '--init-only']);
    expect(r.code, r.out).toBe(0);
    expect(r.out).not.toContain('nf_conntrack');
    expect(await sysctl(`${NF}nf_conntrack_tcp_timeout_established`)).toBe('432000');
    expect(await sysctl(`${NF}nf_conntrack_tcp_timeout_close_wait`)).toBe('60');
  });

  it('--init-only exits 1 when nf_conntrack_max cannot be raised here, naming it and conntrack.maxPerCore, and still sets the rest (setSysctls)', async () => {
    await kernelDefaults();
    const max = Number(await hostValue(`${NF}nf_conntrack_max`));
    const r = await kubeProxy(['--init-only', `--conntrack-min=${max * 2}`, '--conntrack-udp-timeout=45s']);
    expect(r.code, r.out).toBe(1);
    expect(r.out).toContain(`cannot set net.netfilter.nf_conntrack_max to ${max * 2} (it is ${max}): Permission denied`);
    expect(r.out).toContain('--conntrack-max-per-core=0 (conntrack.maxPerCore: 0) leaves it');
    // The hashsize is raised to a quarter of the max when smaller, and only the host's namespace may do that.
    const hashsize = Number((await readFile('/sys/module/nf_conntrack/parameters/hashsize', 'utf8')).trim());
    if (hashsize < max / 2) expect(r.out).toMatch(/cannot set \/sys\/module\/nf_conntrack\/parameters\/hashsize .*only the host network namespace/);
    else expect(r.out).not.toContain('hashsize');
    expect(r.out).not.toContain('System initialized');
    expect(await sysctl(`${NF}nf_conntrack_udp_timeout`)).toBe('45');
    expect(await sysctl(`${NF}nf_conntrack_tcp_timeout_established`)).toBe('86400');
  });

  it('the agent whose conntrack setup is refused goes on serving, says why once (log and Node event), and runs at oom_score_adj -999 (ProxyServer.Run)', async () => {
    await kernelDefaults();
    const max = Number(await hostValue(`${NF}nf_conntrack_max`));
    const agent = await startAgentProcess(ns(), agentArgs(`--conntrack-min=${max * 2}`), reachesPodA);
    try {
      const errors = errorLines(agent.output()).map((l) => l.text);
      expect(errors.length).toBeGreaterThan(0);
      for (const e of errors) expect(e).toContain('conntrack setup: cannot set');
      expect(errors[0]).toContain('conntrack setup: cannot set net.netfilter.nf_conntrack_max');
      expect(logLines(agent.output()).map((l) => l.fields)).toContainEqual(
        expect.objectContaining({ event: 'FailedConntrackSetup', regarding: 'Node node-1' }),
      );
      expect(await sysctl(`${NF}nf_conntrack_tcp_timeout_established`)).toBe('86400');
      // Lowering the score needs CAP_SYS_RESOURCE, which some sandboxes (this CI's among them) drop even for root.
      const adj = (await readFile(`/proc/${agent.child.pid}/oom_score_adj`, 'utf8')).trim();
      if (hasCapability(CAP_SYS_RESOURCE)) expect(adj).toBe('-999');
      else {
        expect(adj).toBe('0');
        expect(agent.output()).toContain('cannot set oom_score_adj to -999: EACCES: permission denied, write (lowering it needs CAP_SYS_RESOURCE)');
      }
    } finally {
      expect(await agent.stop()).toBe(0);
    }
  });

  // An unprivileged container's /proc/sys: the agent's own mount namespace, /proc/sys bound read-only over itself.
  const readOnlyProcSys = afterMounts('mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys');
  const sysctlComplaints = (output: string) =>
    complaints(output)
      .map((l) => l.text)
      .filter((l) => /sysctl|route_localnet|conntrack|nf_conntrack/.test(l));

  it("upstream's unprivileged recipe: after --init-only, an agent with a read-only /proc/sys finds every value set and says nothing (EnsureSysctl)", async () => {
    await kernelDefaults();
    expect((await kubeProxy(['--cleanup'])).code).toBe(0);
    expect((await kubeProxy(['--init-only'])).code).toBe(0);
    const agent = await startAgentProcess(ns(), agentArgs(), reachesPodA, 20_000, { command: readOnlyProcSys });
    try {
      expect(sysctlComplaints(agent.output())).toEqual([]);
    } finally {
      expect(await agent.stop()).toBe(0);
    }
  });

  it('without --init-only first, that agent names each value its read-only /proc/sys refuses, and serves', async () => {
    await kernelDefaults();
    expect((await kubeProxy(['--cleanup'])).code).toBe(0);
    const agent = await startAgentProcess(ns(), agentArgs(), reachesPodA, 20_000, { command: readOnlyProcSys });
    try {
      const said = sysctlComplaints(agent.output()).join('\n');
      expect(said).toContain('cannot set net.netfilter.nf_conntrack_tcp_timeout_established to 86400 (it is 432000): Read-only file system');
      expect(said).toContain('cannot set net.netfilter.nf_conntrack_tcp_timeout_close_wait to 3600 (it is 60): Read-only file system');
      expect(said).toContain('cannot set net.ipv4.conf.all.route_localnet=1 (Read-only file system): NodePorts on 127.0.0.1 will not work');
      expect(await sysctl(`${NF}nf_conntrack_tcp_timeout_established`)).toBe('432000');
    } finally {
      expect(await agent.stop()).toBe(0);
    }
  });

  it('nf_conntrack missing at start (its sysctls hidden from the agent): serves, and sets the values within a sync period of their appearing', async () => {
    await kernelDefaults();
    expect((await kubeProxy(['--cleanup'])).code).toBe(0);
    // The agent's own mount namespace, where an empty read-only tmpfs hides net.netfilter as a kernel without the module has none.
    const hidden = afterMounts('mount -t tmpfs -o ro none /proc/sys/net/netfilter');
    const agent = await startAgentProcess(ns(), agentArgs('--iptables-sync-period=1s'), reachesPodA, 20_000, { command: hidden });
    try {
      expect(agent.output()).toContain('conntrack setup: cannot set net.netfilter.nf_conntrack_tcp_timeout_established to 86400');
      expect(await sysctl(`${NF}nf_conntrack_tcp_timeout_established`)).toBe('432000');
      // The module "loads": the values appear in the agent's namespace.
      const shown = await cluster.runnerIn(ns()).run('nsenter', ['-t', String(agent.child.pid), '-m', 'umount', '/proc/sys/net/netfilter']);
      expect(shown.code, shown.stderr).toBe(0);
      await waitFor(
        'conntrack values set after they appeared',
        // Both: one attempt writes them one after the other.
        async () =>
          (await sysctl(`${NF}nf_conntrack_tcp_timeout_established`)) === '86400' &&
          (await sysctl(`${NF}nf_conntrack_tcp_timeout_close_wait`)) === '3600',
        10_000,
        () => agent.output().slice(-2000),
      );
      // Said once an attempt could read every value (an attempt under way at the unmount may have set some already).
      await waitFor(
        'the retry reported',
        async () => agent.output().includes('conntrack setup: nf_conntrack is loaded now; 0 value(s) refused'),
        5000,
      );
    } finally {
      expect(await agent.stop()).toBe(0);
    }
  });

  it('a kubeconfig that cannot work, or none at all, stops the agent with status 1, saying why, before it touches the node (newProxyServer: createClient first)', async () => {
    await kernelDefaults();
    const file = join(dir, 'kubeconfig.conf');
    await writeFile(
      file,
      'apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: "https://192.0.2.1:6443"}\ncontexts:\n- name: ctx\n  context: {cluster: c, user: u}\ncurrent-context: prod\nusers:\n- name: u\n  user: {token: x}\n',
    );
    const r = await kubeProxy(['--kubeconfig', file, '--hostname-override', 'node-1', '--metrics-bind-address', '']);
    expect(r.code, r.out).toBe(1);
    expect(r.out).toContain(
      `error: the kubeconfig ${file} names no cluster to talk to: its current-context "prod" is not one of its contexts ("ctx")`,
    );
    expect(r.out).not.toContain('Set sysctl');
    expect(await sysctl(`${NF}nf_conntrack_tcp_timeout_established`)).toBe('432000');
    // Nothing that says where the API server is (upstream: "unable to load in-cluster configuration").
    const none = await cluster
      .runnerIn(ns())
      .run('env', ['-u', 'KUBECONFIG', '-u', 'KUBERNETES_SERVICE_HOST', `HOME=${dir}`, process.execPath, MAIN, '--hostname-override', 'node-1'], {
        timeoutMs: 30_000,
      });
    expect(none.code, none.stdout + none.stderr).toBe(1);
    expect(none.stderr).toContain('error: no API server to talk to: neither --kubeconfig nor --master is given');
    expect(none.stdout).not.toContain('Set sysctl');
    expect(await sysctl(`${NF}nf_conntrack_tcp_timeout_established`)).toBe('432000');
  });

  it('--oom-score-adj sets the agent’s own score', async () => {
    // The last agent's rules stay at its stop: remove them, so that traffic says this agent has synced.
    expect((await kubeProxy(['--cleanup'])).code).toBe(0);
    const agent = await startAgentProcess(ns(), agentArgs('--oom-score-adj=250'), reachesPodA);
    try {
      expect((await readFile(`/proc/${agent.child.pid}/oom_score_adj`, 'utf8')).trim()).toBe('250');
    } finally {
      expect(await agent.stop()).toBe(0);
    }
  });

  // readOnlyRootFilesystem: true gives a read-only /tmp; the runtime's /dev/shm tmpfs stays writable.
  const readOnly = (dirs: string) =>
    afterMounts(
      dirs
        .split(' ')
        .map((d) => `mount --bind ${d} ${d} && mount -o remount,bind,ro ${d}`)
        .join(' && '),
    );

  it('nftables mode with a read-only root filesystem: stages its transactions in /dev/shm; with /dev/shm read-only too, says so and applies each with nft -f -', async () => {
    expect((await kubeProxy(['--cleanup'])).code).toBe(0);
    const first = await startAgentProcess(ns(), agentArgs('--mode=nftables'), reachesPodA, 20_000, { command: readOnly('/tmp') });
    try {
      expect(first.output()).not.toContain('cannot stage nft transactions');
      const staged = await cluster
        .runnerIn(ns())
        .run('nsenter', ['-t', String(first.child.pid), '-m', 'sh', '-c', 'ls -d /dev/shm/kube-proxy-nft-*']);
      expect(staged.stdout.trim(), staged.stderr).toMatch(/^\/dev\/shm\/kube-proxy-nft-\w+$/);
    } finally {
      expect(await first.stop()).toBe(0);
    }
    expect((await kubeProxy(['--cleanup'])).code).toBe(0);
    const second = await startAgentProcess(ns(), agentArgs('--mode=nftables'), reachesPodA, 20_000, { command: readOnly('/tmp /dev/shm') });
    try {
      expect(second.output()).toContain(
        'cannot stage nft transactions in /tmp: EROFS, /dev/shm: EROFS: each nftables transaction runs as its own `nft -f -`',
      );
      const table = await cluster.runnerIn(ns()).run('nft', ['list', 'map', 'ip', 'kube-proxy', 'service-ips']);
      expect(table.stdout).toContain('172.30.0.10 . tcp . 80 : goto service-');
    } finally {
      expect(await second.stop()).toBe(0);
    }
    expect((await kubeProxy(['--cleanup'])).code).toBe(0);
  });
});
