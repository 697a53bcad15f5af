/**
 * A node other tools wrote rules on first (Docker, flannel, kubelet,
 * kube-router's network policies, Calico, firewalld: neighbour-rules.case.ts),
 * with either iptables backend. The real `kube-proxy-ts` process runs there
 * in each mode in turn (iptables, nftables, userspace: every switch removes
 * the mode before), then `--cleanup`. At every step real traffic reaches the
 * pods through a ClusterIP and a NodePort, and every rule of the neighbours
 * is still there, unchanged and in its order, in both families and both
 * backends, and firewalld's table too; after `--cleanup` the node's rules are
 * exactly what the neighbours wrote. In iptables mode the agent picks the
 * neighbours' backend (upstream's iptables-wrapper detection), `diff` reports
 * converged with the foreign chains present, and `trace` follows the live
 * rules past Docker's and Calico's to the pod. Last, in each mode, an
 * `nft flush ruleset` (a restart of Debian's nftables.service) is repaired
 * within the sync period.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump } from 'js-yaml';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { IptablesBackend } from '../iptables/iptables.ts';
import { startAgentProcess, waitFor, type AgentProcess } from './agent-runner.ts';
import { makeEndpointSlice, makeNode, makeService } from './builders.ts';
import { FIREWALLD_NFT, KUBE_PROXY_CHAIN, NEIGHBOURS_V4, NEIGHBOURS_V6 } from './neighbour-rules.case.ts';
import { createCluster, NODE_1_TWO_PODS, type Cluster } from './netns/cluster.ts';
import type { PodServers } from './netns/servers.ts';
import { podsHit, request } from './netns/traffic.ts';
import { logLines } from './log-lines.ts';

const MAIN = new URL('../src/main.ts', import.meta.url).pathname;
const SVC_IP = '172.30.0.10';
const NODE_IP = '192.168.50.11';
const NODE_PORT = 30080;
const pods = { 'pod-a': '10.244.1.2', 'pod-b': '10.244.1.3' } as const;
type Pod = keyof typeof pods;
type Mode = 'iptables' | 'nftables' | 'userspace';
const BACKENDS: readonly IptablesBackend[] = ['nft', 'legacy'];

const objects = (pod: Pod) => [
  makeNode('node-1', { addresses: [NODE_IP], podCIDR: '10.244.1.0/24' }),
  makeService('ns1', 'web', { type: 'NodePort', clusterIP: SVC_IP, ports: [{ name: 'p80', port: 80, targetPort: 8080, nodePort: NODE_PORT }] }),
  makeEndpointSlice('ns1', 'web', 'web-1', { endpoints: [{ ip: pods[pod], nodeName: 'node-1' }], ports: [{ name: 'p80', port: 8080 }] }),
];

/** iptables-save text without its comment lines and counters (they change with traffic), one line per entry. */
function normal(save: string): string[] {
  return save
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => l.replace(/^\[\d+:\d+\] /, '').replace(/^(:\S+ \S+) \[\d+:\d+\]$/, '$1'));
}

/** The lines of a save that are not kube-proxy's: its chains, their rules and the rules jumping to them dropped. */
function foreign(save: string): string[] {
  return normal(save).filter((l) => {
    const chain = l.startsWith(':') ? l.slice(1).split(' ')[0]! : l.startsWith('-A ') ? l.split(' ')[1]! : '';
    const target = l.startsWith('-A ') ? (/ -[jg] (\S+)/.exec(l)?.[1] ?? '') : '';
    return !KUBE_PROXY_CHAIN.test(chain) && !KUBE_PROXY_CHAIN.test(target);
  });
}

describe.each(BACKENDS)('a node whose neighbours use iptables-%s', (backend) => {
  const other: IptablesBackend = backend === 'nft' ? 'legacy' : 'nft';
  let cluster: Cluster;
  let servers: PodServers;
  let dir: string;
  let agent: AgentProcess | null = null;
  /** What the neighbours wrote, per command (`iptables-nft-save`, ...), as normal() reads it. */
  const before = new Map<string, string[]>();
  let firewalld = '';

  const ns = () => cluster.node('node-1').ns;
  const exec = async (cmd: string, args: readonly string[], input?: string) => {
    const r = await cluster.exec(ns(), cmd, args, input === undefined ? {} : { input });
    if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
    return r.stdout;
  };
  const saves = async () => {
    const out = new Map<string, string>();
    for (const b of [backend, other]) for (const bin of ['iptables', 'ip6tables']) out.set(`${bin}-${b}-save`, await exec(`${bin}-${b}-save`, []));
    return out;
  };
  const nftTables = async () => (await exec('nft', ['list', 'tables'])).split('\n').filter(Boolean).sort();
  const write = (pod: Pod) =>
    writeFile(
      join(dir, 'cluster.yaml'),
      objects(pod)
        .map((d) => dump(d))
        .join('---\n'),
    );
  const reaches = (pod: Pod, ip: string, port: number) => async () => {
    const hit = podsHit(await request(cluster, cluster.client!.ns, { proto: 'tcp', ip, port, count: 6, timeoutMs: 800 }));
    return hit.size === 1 && hit.get(pod) === 6;
  };
  const reachesBoth = (pod: Pod) => async () => (await reaches(pod, SVC_IP, 80)()) && (await reaches(pod, NODE_IP, NODE_PORT)());
  const flags = () => ['--objects', dir, '--hostname-override=node-1', '--cluster-cidr=10.244.0.0/16', '--iptables-min-sync-period=0s'];
  /** Only `mode`'s rules are installed: the previous mode's are gone (until then they still carry traffic). */
  const installed = async (mode: Mode) => {
    const nat = await exec(`iptables-${backend}-save`, ['-t', 'nat']);
    const now = {
      nftables: (await nftTables()).includes('table ip kube-proxy'),
      iptables: /^:KUBE-SERVICES /m.test(nat),
      userspace: /^:KUBE-PORTALS-CONTAINER /m.test(nat),
    };
    return Object.entries(now).every(([m, on]) => on === (m === mode));
  };
  /** Starts the agent with the objects file sending the service to `pod` (each step sets its own: a failed step leaves no state behind). */
  const start = async (mode: Mode, pod: Pod, more: readonly string[] = []) => {
    await write(pod);
    const args = [`--proxy-mode=${mode}`, ...flags(), ...more, '--healthz-bind-address=127.0.0.1:0', '--metrics-bind-address='];
    agent = await startAgentProcess(ns(), args, async () => (await installed(mode)) && (await reachesBoth(pod)()));
  };
  const stop = async () => {
    const code = await agent!.stop();
    agent = null;
    expect(code).toBe(0);
  };

  /** Every neighbour's line is still there, in its order, in both families and both backends; firewalld's table unchanged. */
  async function expectNeighboursIntact(): Promise<void> {
    for (const [cmd, text] of await saves()) expect(foreign(text), cmd).toEqual(before.get(cmd));
    expect(await exec('nft', ['list', 'table', 'inet', 'firewalld'])).toBe(firewalld);
  }

  beforeAll(async () => {
    cluster = await createCluster({
      prefix: `kptnb${backend.slice(0, 3)}`,
      client: true,
      nodes: [NODE_1_TWO_PODS],
    });
    servers = await cluster.startPodServers({ tcp: [8080] });
    dir = await mkdtemp(join(tmpdir(), 'kpt-neighbours-'));
    await exec(`iptables-${backend}-restore`, [], NEIGHBOURS_V4);
    await exec(`ip6tables-${backend}-restore`, [], NEIGHBOURS_V6);
    await exec('nft', ['-f', '-'], FIREWALLD_NFT);
    for (const [cmd, text] of await saves()) before.set(cmd, normal(text));
    firewalld = await exec('nft', ['list', 'table', 'inet', 'firewalld']);
    // The neighbours' rules are what the dumps hold: nothing of kube-proxy's yet.
    expect(before.get(`iptables-${backend}-save`)).toEqual(foreign(await exec(`iptables-${backend}-save`, [])));
    expect(before.get(`iptables-${backend}-save`)!.filter((l) => l.startsWith('-A '))).toHaveLength(55);
  }, 60_000);

  afterEach(async () => {
    await agent?.stop(); // a failed step's agent must not fight the next step's
    agent = null;
  });

  afterAll(async () => {
    await servers?.stop();
    await cluster?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("iptables mode: writes into the neighbours' backend, leaves every neighbour's rule in place, diff converged, trace reaches the pod", async () => {
    await start('iptables', 'pod-a');
    expect(logLines(agent!.output()).map((l) => l.fields['backend'])).toContain(backend);
    const ours = (await exec(`iptables-${backend}-save`, ['-t', 'nat'])).match(/^:KUBE-SERVICES /m);
    expect(ours).not.toBeNull();
    expect(await exec(`iptables-${other}-save`, [])).not.toMatch(/KUBE-SERVICES/);
    await expectNeighboursIntact();

    // A partial sync (the endpoint moves) keeps them too.
    await write('pod-b');
    await waitFor('endpoint moved to pod-b', reachesBoth('pod-b'), 15_000, () => agent!.output().slice(-2000));
    await expectNeighboursIntact();

    const diff = await cluster.exec(ns(), process.execPath, [MAIN, 'diff', ...flags()]);
    expect(diff.code, diff.stdout + diff.stderr).toBe(0);
    expect(diff.stdout + diff.stderr).not.toMatch(/DOCKER|FLANNEL|cali-|KUBE-ROUTER|KUBE-NWPLCY|KUBE-POD-FW|KUBE-KUBELET-CANARY/);
    const trace = await cluster.exec(ns(), process.execPath, [MAIN, 'trace', '--src', '192.168.50.200', '--dst', `${SVC_IP}:80/TCP`]);
    expect(trace.code, trace.stderr).toBe(0);
    expect(trace.stdout).toContain(`${pods['pod-b']}:8080`);
    await stop();
  });

  it("nftables mode: the iptables mode's rules go, the neighbours' stay, firewalld's table is untouched; diff converged, trace reaches the pod", async () => {
    await start('nftables', 'pod-b');
    expect(await nftTables()).toEqual(expect.arrayContaining(['table ip kube-proxy', 'table ip6 kube-proxy', 'table inet firewalld']));
    for (const [cmd, text] of await saves()) {
      expect(normal(text), `${cmd}: only the neighbours' lines`).toEqual(before.get(cmd));
    }
    await expectNeighboursIntact();
    // diff and trace read only the kube-proxy tables, whatever else nft lists.
    const diff = await cluster.exec(ns(), process.execPath, [MAIN, 'diff', '--mode=nftables', ...flags()]);
    expect(diff.code, diff.stdout + diff.stderr).toBe(0);
    const trace = await cluster.exec(ns(), process.execPath, [
      MAIN,
      'trace',
      '--mode=nftables',
      '--src',
      '192.168.50.200',
      '--dst',
      `${SVC_IP}:80/TCP`,
    ]);
    expect(trace.code, trace.stderr).toBe(0);
    expect(trace.stdout).toContain(`${pods['pod-b']}:8080`);
    await stop();
  });

  it("userspace mode: the nftables tables go, portals work next to Docker's and kube-router's rules", async () => {
    await start('userspace', 'pod-b');
    expect(await nftTables()).not.toContain('table ip kube-proxy');
    expect(await nftTables()).not.toContain('table ip6 kube-proxy');
    await expectNeighboursIntact();
    await stop();
  });

  it('--cleanup leaves exactly what the neighbours wrote', async () => {
    const r = await cluster.exec(ns(), process.execPath, [MAIN, '--cleanup']);
    expect(r.code, r.stderr).toBe(0);
    for (const [cmd, text] of await saves()) expect(normal(text), cmd).toEqual(before.get(cmd));
    expect(await exec('nft', ['list', 'table', 'inet', 'firewalld'])).toBe(firewalld);
    expect(await nftTables()).not.toContain('table ip kube-proxy');
  });

  it("iptables mode does not fight a neighbour that moves its jump above kube-proxy's (Docker's restart, Calico's insert mode): upstream checks jumps with -C, not their position", async () => {
    // -v 2: each sync's debug line, which says when the periodic syncs after the move have run.
    await start('iptables', 'pod-a', ['--iptables-sync-period=1s', '-v', '2']);
    const syncs = () => logLines(agent!.output()).filter((l) => l.msg === 'synced iptables rules' && l.fields['ipFamily'] === 'IPv4').length;
    // What dockerd does when it starts: DOCKER-USER goes back to the top of FORWARD.
    await exec(`iptables-${backend}`, ['-D', 'FORWARD', '-j', 'DOCKER-USER']);
    await exec(`iptables-${backend}`, ['-I', 'FORWARD', '1', '-j', 'DOCKER-USER']);
    const forward = async () => (await exec(`iptables-${backend}`, ['-S', 'FORWARD'])).split('\n');
    const moved = await forward();
    expect(moved[1]).toBe('-A FORWARD -j DOCKER-USER');
    // Two periodic syncs that started after the move (the first line after it may be from one that started before).
    const seen = syncs();
    await waitFor(
      'two periodic syncs after the move',
      async () => syncs() >= seen + 3,
      10_000,
      () => agent!.output().slice(-2000),
    );
    expect(await forward()).toEqual(moved);
    const diff = await cluster.exec(ns(), process.execPath, [MAIN, 'diff', ...flags()]);
    expect(diff.code, diff.stdout + diff.stderr).toBe(0);
    expect(await reachesBoth('pod-a')()).toBe(true);
    await stop();
    expect((await cluster.exec(ns(), process.execPath, [MAIN, '--cleanup'])).code).toBe(0);
  });

  // Last: it wipes the neighbours' rules too (in the nft backend), as restarting Debian's nftables.service does
  // (/etc/nftables.conf starts with `flush ruleset`).
  it.each<Mode>(['iptables', 'nftables', 'userspace'])(
    '%s mode puts its rules back within the sync period after `nft flush ruleset`',
    async (mode) => {
      await start(mode, 'pod-a', ['--iptables-sync-period=1s']);
      await exec('nft', ['flush', 'ruleset']);
      await waitFor(
        `${mode} rules back after nft flush ruleset`,
        async () => (await installed(mode)) && (await reachesBoth('pod-a')()),
        8000,
        () => agent!.output().slice(-2000),
      );
      await stop();
      if (mode !== 'userspace') expect((await cluster.exec(ns(), process.execPath, [MAIN, '--cleanup'])).code).toBe(0);
    },
  );
});
