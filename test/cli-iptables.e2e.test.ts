/**
 * `diff` and `trace` (iptables mode) on node-1 of a namespace cluster (test/netns), over the rules `render` wrote
 * (test/nft-cli.case.ts's objects plus a service whose endpoint is node-1 itself, as a hostNetwork pod's or the
 * apiserver's is), after other tools changed the node the way they do on real nodes: Docker (policy DROP on filter
 * FORWARD, its chains ahead of kube-proxy’s jumps, rules on docker0), ufw (policy DROP on filter INPUT, loopback
 * accepted), a pre-DNAT deny in mangle PREROUTING (Calico's preDNAT policies live there), Cilium's untracked pod
 * traffic (raw PREROUTING CT --notrack) and a mark rewrite in mangle FORWARD. Each changes what the kernel does to
 * real traffic (checked here); trace must say what the kernel did, and diff reports only kube-proxy's rules.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump } from 'js-yaml';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createIptables } from '../iptables/restore.ts';
import { makeEndpointSlice, makeService } from './builders.ts';
import { cli } from './cli-run.ts';
import { CLIENT, FLOW_NODES, NODE1, PODS, TARGET_PORT } from './flow-cases.case.ts';
import { cliObjects, traceSummary } from './nft-cli.case.ts';
import { createCluster, type Cluster } from './netns/cluster.ts';
import { startPodServers, type PodServers } from './netns/servers.ts';
import { podsHit, request, type RequestResult } from './netns/traffic.ts';

const MAIN = new URL('../src/main.ts', import.meta.url).pathname;
const FLAGS = ['--hostname-override=node-1', '--cluster-cidr=10.244.0.0/16,fd00:10:244::/56'] as const;
const HOSTNET_IP = '172.30.0.60';
let cluster: Cluster;
let servers: PodServers;
let nodeServer: PodServers;
let objects: string;

const node = () => cluster.node('node-1').ns;
const main = (args: readonly string[]) => cluster.exec(node(), process.execPath, [MAIN, ...args], { timeoutMs: 30_000 });
const diff = () => main(['diff', ...FLAGS, '--objects', objects]);
const trace = async (src: string, dst: string) => {
  const r = await main(['trace', ...FLAGS, '--src', src, '--dst', dst]);
  expect(r.code, r.stderr).toBe(0);
  return { ...traceSummary(r.stdout), out: r.stdout };
};
/** iptables commands in node-1, each an argument list for `iptables`. */
const ipt = async (...commands: readonly (readonly string[])[]) => {
  for (const c of commands) {
    const r = await cluster.exec(node(), 'iptables', ['-w', ...c]);
    expect(r.code, `iptables ${c.join(' ')}: ${r.stderr}`).toBe(0);
  }
};
const flushConntrack = () => cluster.exec(node(), 'conntrack', ['-F']).catch(() => undefined);
const send = async (fromNs: string, ip: string, port: number, count = 4): Promise<RequestResult[]> => {
  await flushConntrack();
  return request(cluster, fromNs, { proto: 'tcp', ip, port, count, timeoutMs: 700 });
};
/** Which pods answer `count` requests (sorted), or the errors. */
const answers = async (fromNs: string, ip: string, port = 80, count = 12): Promise<string> => {
  const results = await send(fromNs, ip, port, count);
  const hit = podsHit(results);
  return hit.size > 0 ? [...hit.keys()].sort().join() : [...new Set(results.map((r) => (r.ok ? '' : r.error)))].join();
};
const endpoint = (pod: keyof typeof PODS) => `${PODS[pod].ip}:${TARGET_PORT}`;

async function writeObjects(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kpt-ipt-cli-'));
  const file = join(dir, 'objects.yaml');
  const hostnet = [
    makeService('ns1', 'hostnet', { clusterIP: HOSTNET_IP, ports: [{ name: 'p80', port: 80, targetPort: TARGET_PORT, protocol: 'TCP' }] }),
    makeEndpointSlice('ns1', 'hostnet', { endpoints: [{ ip: NODE1, nodeName: 'node-1' }], ports: [{ name: 'p80', port: TARGET_PORT }] }),
  ];
  await writeFile(file, [...cliObjects(), ...hostnet].map((o) => dump(o)).join('---\n'));
  return file;
}

const EMPTY_TABLES =
  '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n' +
  '*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n' +
  '*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n' +
  '*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n';

/** What `render` printed for each family: the objects and flags never change, so it runs once (beforeAll). */
const rendered = new Map<'IPv4' | 'IPv6', string>();

/** node-1 as `render` leaves it: empty tables, then kube-proxy's rules for both families. */
async function loadRendered(): Promise<void> {
  for (const family of ['IPv4', 'IPv6'] as const) {
    const iptables = createIptables({ family, backend: 'nft', runner: cluster.runnerIn(node()) });
    await iptables.restore(EMPTY_TABLES, { noflush: false, counters: false });
    await iptables.restore(rendered.get(family)!, { noflush: true, counters: false });
  }
  await flushConntrack();
}

beforeAll(async () => {
  cluster = await createCluster({ prefix: 'kptiptcli', client: true, ipv6: true, nodes: FLOW_NODES });
  servers = await cluster.startPodServers({ tcp: [TARGET_PORT] });
  // A hostNetwork endpoint: the server in node-1's own namespace, on its address.
  nodeServer = await startPodServers([{ name: 'node-1', ns: node(), ip: NODE1, ip6: null }], { tcp: [TARGET_PORT] });
  await cluster.exec(node(), 'ip', ['link', 'add', 'docker0', 'type', 'bridge']);
  await cluster.exec(node(), 'ip', ['addr', 'add', '172.17.0.1/16', 'dev', 'docker0']);
  await cluster.exec(node(), 'ip', ['link', 'set', 'docker0', 'up']);
  objects = await writeObjects();
  await Promise.all(
    (['IPv4', 'IPv6'] as const).map(async (family) => {
      const r = await cli(['render', ...FLAGS, '--objects', objects, '--ip-family', family]);
      expect(r.code, r.stderr).toBe(0);
      rendered.set(family, r.stdout);
    }),
  );
}, 60_000);

afterAll(async () => {
  await nodeServer?.stop();
  await servers?.stop();
  await cluster?.destroy();
});

describe('diff and trace (iptables mode) on a node other tools changed', { timeout: 90_000 }, () => {
  beforeEach(loadRendered);

  it('the rules render wrote: diff converged, the client reaches the NodePort, trace agrees', async () => {
    const d = await diff();
    expect(d.code, d.stdout + d.stderr).toBe(0);
    expect(await answers(cluster.client!.ns, NODE1, 30080)).toBe('pod-a,pod-c');
    expect(await trace(CLIENT, `${NODE1}:30080`)).toMatchObject({ verdict: 'ACCEPT', endpoints: [endpoint('pod-a'), endpoint('pod-c')] });
  });

  it('Docker: FORWARD policy DROP, its chains ahead of kube-proxy’s jumps; the NodePort still reaches both pods (KUBE-FORWARD accepts the masquerade mark, issue #39823), trace agrees; pod traffic is dropped', async () => {
    // What dockerd 28 leaves in filter FORWARD (restarted after kube-proxy: DOCKER-USER and DOCKER-FORWARD first).
    await ipt(
      ['-P', 'FORWARD', 'DROP'],
      ['-N', 'DOCKER'],
      ['-N', 'DOCKER-BRIDGE'],
      ['-N', 'DOCKER-CT'],
      ['-N', 'DOCKER-FORWARD'],
      ['-N', 'DOCKER-ISOLATION-STAGE-1'],
      ['-N', 'DOCKER-ISOLATION-STAGE-2'],
      ['-N', 'DOCKER-USER'],
      ['-A', 'DOCKER', '!', '-i', 'docker0', '-o', 'docker0', '-j', 'DROP'],
      ['-A', 'DOCKER-BRIDGE', '-o', 'docker0', '-j', 'DOCKER'],
      ['-A', 'DOCKER-CT', '-o', 'docker0', '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'ACCEPT'],
      ['-A', 'DOCKER-FORWARD', '-j', 'DOCKER-CT'],
      ['-A', 'DOCKER-FORWARD', '-j', 'DOCKER-ISOLATION-STAGE-1'],
      ['-A', 'DOCKER-FORWARD', '-j', 'DOCKER-BRIDGE'],
      ['-A', 'DOCKER-FORWARD', '-i', 'docker0', '-j', 'ACCEPT'],
      ['-A', 'DOCKER-ISOLATION-STAGE-1', '-i', 'docker0', '!', '-o', 'docker0', '-j', 'DOCKER-ISOLATION-STAGE-2'],
      ['-A', 'DOCKER-ISOLATION-STAGE-2', '-o', 'docker0', '-j', 'DROP'],
      ['-A', 'DOCKER-USER', '-j', 'RETURN'],
      ['-I', 'FORWARD', '1', '-j', 'DOCKER-FORWARD'],
      ['-I', 'FORWARD', '1', '-j', 'DOCKER-USER'],
    );
    expect(await answers(cluster.client!.ns, NODE1, 30080)).toBe('pod-a,pod-c');
    const t = await trace(CLIENT, `${NODE1}:30080`);
    expect(t, t.out).toMatchObject({ verdict: 'ACCEPT', endpoints: [endpoint('pod-a'), endpoint('pod-c')] });
    // A pod's ClusterIP connection carries no masquerade mark: only the policy is left, on the kernel and in trace.
    expect(await answers(cluster.pod('pod-b').ns, '172.30.0.10', 80, 4)).toBe('timeout');
    const pod = await trace(PODS['pod-b'].ip, '172.30.0.10:80');
    expect(pod, pod.out).toMatchObject({ verdict: 'DROP' });
    expect(pod.out).toContain('policy DROP of filter FORWARD');
  });

  it('ufw: INPUT policy DROP with loopback accepted; the node reaches a hostNetwork endpoint through its ClusterIP (via lo), the client does not; trace agrees', async () => {
    await ipt(
      ['-P', 'INPUT', 'DROP'],
      ['-I', 'INPUT', '1', '-i', 'lo', '-j', 'ACCEPT'],
      ['-I', 'INPUT', '2', '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'ACCEPT'],
    );
    expect(await answers(node(), HOSTNET_IP, 80, 4)).toBe('node-1');
    const t = await trace(NODE1, `${HOSTNET_IP}:80`);
    expect(t, t.out).toMatchObject({ verdict: 'ACCEPT', endpoints: [`${NODE1}:${TARGET_PORT}`] });
    expect(await answers(cluster.client!.ns, HOSTNET_IP, 80, 4)).toBe('timeout');
    expect(await trace(CLIENT, `${HOSTNET_IP}:80`)).toMatchObject({ verdict: 'DROP' });
  });

  it('a pre-DNAT deny in mangle PREROUTING (where Calico puts preDNAT policy): the kernel drops the NodePort; trace says DROP', async () => {
    await ipt(
      ['-t', 'mangle', '-N', 'cali-PREROUTING'],
      ['-t', 'mangle', '-A', 'PREROUTING', '-j', 'cali-PREROUTING'],
      ['-t', 'mangle', '-A', 'cali-PREROUTING', '-s', CLIENT, '-p', 'tcp', '--dport', '30080', '-m', 'conntrack', '--ctstate', 'NEW', '-j', 'DROP'],
    );
    expect(await answers(cluster.client!.ns, NODE1, 30080, 4)).toBe('timeout');
    const t = await trace(CLIENT, `${NODE1}:30080`);
    expect(t, t.out).toMatchObject({ verdict: 'DROP', endpoints: [] });
    expect(t.out).toContain('mangle cali-PREROUTING rule 1: DROP');
  });

  it('untracked pod traffic (raw PREROUTING CT --notrack, as Cilium’s no-conntrack rules install): no nat hook runs, the ClusterIP is not translated; trace says so', async () => {
    await ipt(['-t', 'raw', '-A', 'PREROUTING', '-s', '10.244.0.0/16', '-j', 'CT', '--notrack']);
    expect(await answers(cluster.pod('pod-b').ns, '172.30.0.10', 80, 4)).not.toMatch(/pod-/);
    const t = await trace(PODS['pod-b'].ip, '172.30.0.10:80');
    expect(t, t.out).toMatchObject({ endpoints: [] });
  });

  it('a mangle FORWARD rule clearing the mark: the NodePort is no longer masqueraded (pod-a sees the client), trace says so', async () => {
    await ipt(['-t', 'mangle', '-A', 'FORWARD', '-j', 'MARK', '--set-xmark', '0x0/0xffff']);
    const results = await send(cluster.client!.ns, NODE1, 30080, 12);
    const seen = new Set(results.flatMap((r) => (r.ok && r.pod === 'pod-a' ? [r.client.split(':')[0]] : [])));
    expect([...seen]).toEqual([CLIENT]);
    const t = await trace(CLIENT, `${NODE1}:30080`);
    expect(t, t.out).toMatchObject({ masquerade: 'no' });
  });

  it('diff: a node with Docker’s FORWARD policy and chains is still converged (kube-proxy owns neither)', async () => {
    await ipt(['-P', 'FORWARD', 'DROP'], ['-N', 'DOCKER-USER'], ['-A', 'DOCKER-USER', '-j', 'RETURN'], ['-I', 'FORWARD', '1', '-j', 'DOCKER-USER']);
    const d = await diff();
    expect(d.code, d.stdout + d.stderr).toBe(0);
  });
});
