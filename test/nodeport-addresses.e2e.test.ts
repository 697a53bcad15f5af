/**
 * --nodeport-addresses against this host's interfaces, for real: the agent
 * process in node-1's namespace (iptables and nftables modes), where node-1's
 * eth0 has a second address (a secondary IP, a keepalived VIP) that its Node
 * object does not list, and the Node object lists an ExternalIP that no
 * interface has (a cloud node's NATed address). Upstream's proxiers take the
 * NodePort destinations from NodePortAddresses.GetNodeIPs, which lists the
 * host's interface addresses (net.InterfaceAddrs) at every sync: the NodePort
 * answers on the interface address, not on the Node-only one, and an address
 * added to or removed from an interface reaches the rules without any object
 * changing (here within the sync period: the periodic sync reads them again).
 */
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgentProcess, waitFor, type AgentProcess } from './agent-runner.ts';
import { makeEndpointSlice, makeNode, makeService } from './builders.ts';
import { createCluster, NODE_1_TWO_PODS, type Cluster } from './netns/cluster.ts';
import type { PodServers } from './netns/servers.ts';
import { podsHit, request, requestFromNode } from './netns/traffic.ts';

const NODE_IP = '192.168.50.11';
/** On node-1's eth0, not in its Node object. */
const SECONDARY = '192.168.50.111';
/** Added to eth0 while the agent runs. */
const ADDED = '192.168.50.112';
/** On an interface that is up without carrier (a veth whose peer is down: a NIC without link). */
const NO_CARRIER = '192.168.50.113';
/** On an interface added for userspace mode's tests, which then holds the default route (not the first interface). */
const DEFAULT_ROUTE_IP = '192.168.60.1';
/** In the Node object (ExternalIP), on no interface. */
const NODE_ONLY = '192.168.50.211';
const NODE_PORT = 30080;

let cluster: Cluster;
let servers: PodServers;
let dir: string;
let agent: AgentProcess | null = null;

const objects = [
  makeNode('node-1', { addresses: [NODE_IP], externalAddresses: [NODE_ONLY], podCIDR: '10.244.1.0/24' }),
  makeService('ns1', 'web', {
    type: 'NodePort',
    clusterIP: '172.30.0.10',
    ports: [{ name: 'p80', port: 80, targetPort: 8080, nodePort: NODE_PORT }],
  }),
  makeEndpointSlice('ns1', 'web', 'web-1', {
    endpoints: [
      { ip: '10.244.1.2', nodeName: 'node-1' },
      { ip: '10.244.1.3', nodeName: 'node-1' },
    ],
    ports: [{ name: 'p80', port: 8080 }],
  }),
];

const MAIN = new URL('../src/main.ts', import.meta.url).pathname;
/** What the agent and `diff` are given. */
const flags = (mode: 'iptables' | 'nftables') => [
  '--proxy-mode',
  mode,
  '--iptables-backend',
  'nft',
  '--objects',
  dir,
  '--hostname-override',
  'node-1',
  '--cluster-cidr',
  '10.244.0.0/16',
  '--nodeport-addresses',
  '192.168.50.0/24',
];

const node = () => cluster.node('node-1').ns;
const ip = (...args: string[]) => cluster.exec(node(), 'ip', args);

/** Whether the client reaches the pods through ip:NODE_PORT. */
async function reaches(address: string): Promise<boolean> {
  const hit = podsHit(await request(cluster, cluster.client!.ns, { proto: 'tcp', ip: address, port: NODE_PORT, count: 4, timeoutMs: 800 }));
  return [...hit.values()].reduce((a, b) => a + b, 0) === 4;
}

/** The NodePort destinations the agent programmed: the KUBE-NODEPORTS jumps' -d, or the nodeport-ips set's elements. */
async function destinations(mode: 'iptables' | 'nftables'): Promise<string[]> {
  if (mode === 'iptables') {
    const save = (await cluster.exec(node(), 'iptables-nft-save', ['-t', 'nat'])).stdout;
    const jumps = save.split('\n').filter((l) => l.startsWith('-A KUBE-SERVICES ') && l.endsWith('-j KUBE-NODEPORTS'));
    return jumps.flatMap((l) => / -d (\S+?)\/32 /.exec(l)?.[1] ?? []).sort();
  }
  const r = await cluster.exec(node(), 'nft', ['-j', 'list', 'table', 'ip', 'kube-proxy']);
  if (r.code !== 0) throw new Error(`nft: ${r.stderr}`);
  const objects = (JSON.parse(r.stdout) as { nftables: { set?: { name: string; elem?: string[] } }[] }).nftables;
  return [...(objects.find((o) => o.set?.name === 'nodeport-ips')?.set?.elem ?? [])].sort();
}

beforeAll(async () => {
  cluster = await createCluster({ prefix: 'kptnpa', client: true, nodes: [NODE_1_TWO_PODS] });
  servers = await cluster.startPodServers({ tcp: [8080] });
  dir = await mkdtemp(join(tmpdir(), 'kpt-npa-'));
  await writeFile(join(dir, '.next'), objects.map((d) => dump(d)).join('---\n'));
  await rename(join(dir, '.next'), join(dir, 'cluster.yaml'));
});

afterAll(async () => {
  await agent?.stop();
  await servers?.stop();
  await cluster?.destroy();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe.each(['iptables', 'nftables'] as const)('%s mode: --nodeport-addresses selects among the interface addresses', (mode) => {
  beforeAll(async () => {
    await ip('addr', 'add', `${SECONDARY}/24`, 'dev', 'eth0');
    agent = await startAgentProcess(
      node(),
      [
        ...flags(mode),
        '--iptables-min-sync-period',
        '0s',
        '--iptables-sync-period',
        '1s',
        '--healthz-bind-address',
        '',
        '--metrics-bind-address',
        '',
      ],
      // This mode's own rules (the previous mode's stay in place after it stopped, until this one's first sync).
      async () => (await destinations(mode)).includes(NODE_IP) && (await reaches(NODE_IP)),
    );
  });

  afterAll(async () => {
    await agent?.stop();
    agent = null;
    // The next mode starts from the same interfaces; its first sync replaces this mode's rules.
    for (const a of [SECONDARY, ADDED]) await ip('addr', 'del', `${a}/24`, 'dev', 'eth0').catch(() => undefined);
    await ip('link', 'del', 'kpt-nc0').catch(() => undefined);
  });

  it('serves the NodePort on an interface address the Node object does not list, and not on a Node address no interface has (upstream NodePortAddresses.GetNodeIPs)', async () => {
    expect(await reaches(SECONDARY)).toBe(true);
    expect(await destinations(mode)).toEqual([NODE_IP, SECONDARY].sort());
    // The node's own connection to the Node-only address is not taken by the NodePort rules (upstream sends it out).
    const fromNode = await requestFromNode(cluster, 'node-1', { proto: 'tcp', ip: NODE_ONLY, port: NODE_PORT, count: 1, timeoutMs: 500 });
    expect(podsHit(fromNode).size).toBe(0);
    // `diff` on the node wants what the agent wrote: the NodePorts on this node's interface addresses.
    const diff = await cluster.exec(node(), process.execPath, [MAIN, 'diff', ...flags(mode)]);
    expect({ code: diff.code, out: diff.stdout }).toEqual({ code: 0, out: expect.stringContaining('IPv4: converged') });
  });

  it('follows an address added to and removed from an interface within the sync period, no object changing (upstream: GetNodeIPs at each sync)', async () => {
    await ip('addr', 'add', `${ADDED}/24`, 'dev', 'eth0');
    await waitFor(
      `${mode}: NodePort on ${ADDED} after it was added`,
      () => reaches(ADDED),
      5000,
      () => agent!.output().slice(-2000),
    );
    await ip('addr', 'del', `${SECONDARY}/24`, 'dev', 'eth0');
    await waitFor(
      `${mode}: no NodePort destination ${SECONDARY} after it was removed`,
      async () => !(await destinations(mode)).includes(SECONDARY),
      5000,
      () => agent!.output().slice(-2000),
    );
    expect(await destinations(mode)).toEqual([NODE_IP, ADDED].sort());
    expect(await reaches(ADDED)).toBe(true);
  });

  it('serves the NodePort on an address of an interface that is up without carrier, which Linux keeps local (upstream GetNodeIPs: net.InterfaceAddrs lists every address)', async () => {
    // Node's own list (libuv) leaves out interfaces that are not running; the kernel still answers for their
    // addresses on any interface (weak host), here ARP and the connection through eth0.
    await ip('link', 'add', 'kpt-nc0', 'type', 'veth', 'peer', 'name', 'kpt-nc1');
    await ip('link', 'set', 'kpt-nc0', 'up');
    await ip('addr', 'add', `${NO_CARRIER}/32`, 'dev', 'kpt-nc0');
    const link = (await ip('-j', 'link', 'show', 'kpt-nc0')).stdout;
    expect((JSON.parse(link) as { flags: string[] }[])[0]?.flags).toEqual(expect.arrayContaining(['NO-CARRIER', 'UP']));
    await waitFor(
      `${mode}: NodePort destination ${NO_CARRIER} on an interface without carrier`,
      async () => (await destinations(mode)).includes(NO_CARRIER),
      5000,
      () => agent!.output().slice(-2000),
    );
    expect(await reaches(NO_CARRIER)).toBe(true);
  });
});

describe('userspace mode: a Node object whose address no interface has', () => {
  // Upstream's userspace proxier sends the node's own portal and NodePort traffic (KUBE-PORTALS-HOST,
  // KUBE-NODEPORT-HOST) to hostIP:proxyPort, hostIP being --bind-address or, for 0.0.0.0, an interface's address
  // (utilnet.ChooseHostInterface): never an address the host does not have.
  const natted = [makeNode('node-1', { addresses: [NODE_ONLY], podCIDR: '10.244.1.0/24' }), ...objects.slice(1)];
  let natDir = '';
  let defaultRoute: { gateway: string; dev: string } | null = null;

  beforeAll(async () => {
    // A node whose default route leaves by an interface other than its first one (eth0, the pod bridge).
    const routes = JSON.parse((await ip('-j', 'route', 'show', 'default')).stdout) as { gateway: string; dev: string }[];
    defaultRoute = routes[0] ?? null;
    await ip('link', 'add', 'kpt-dr0', 'type', 'veth', 'peer', 'name', 'kpt-dr1');
    await ip('addr', 'add', `${DEFAULT_ROUTE_IP}/24`, 'dev', 'kpt-dr0');
    for (const l of ['kpt-dr0', 'kpt-dr1']) await ip('link', 'set', l, 'up');
    const set = await ip('route', 'replace', 'default', 'via', '192.168.60.2', 'dev', 'kpt-dr0', 'onlink');
    expect(set.code).toBe(0);
    natDir = await mkdtemp(join(tmpdir(), 'kpt-npa-us-'));
    await writeFile(join(natDir, 'cluster.yaml'), natted.map((d) => dump(d)).join('---\n'));
    agent = await startAgentProcess(
      node(),
      [
        '--proxy-mode',
        'userspace',
        '--iptables-backend',
        'nft',
        '--objects',
        natDir,
        '--hostname-override',
        'node-1',
        '--cluster-cidr',
        '10.244.0.0/16',
        '--iptables-min-sync-period',
        '0s',
        '--healthz-bind-address',
        '',
        '--metrics-bind-address',
        '',
      ],
      // Its own portal rules (the nftables mode's table stays after it stopped, until this mode's first sync).
      async () =>
        (await cluster.exec(node(), 'iptables-nft-save', ['-t', 'nat'])).stdout.includes('-A KUBE-NODEPORT-CONTAINER') && (await reaches(NODE_IP)),
    );
  });

  afterAll(async () => {
    await agent?.stop();
    agent = null;
    if (natDir) await rm(natDir, { recursive: true, force: true });
    if (defaultRoute) await ip('route', 'replace', 'default', 'via', defaultRoute.gateway, 'dev', defaultRoute.dev);
    await ip('link', 'del', 'kpt-dr0').catch(() => undefined);
  });

  it("DNATs the node's own portal traffic to the address of the default route's interface (upstream ChooseHostInterface: chooseHostInterfaceFromRoute over /proc/net/route)", async () => {
    const nat = (await cluster.exec(node(), 'iptables-nft-save', ['-t', 'nat'])).stdout;
    const targets = nat
      .split('\n')
      .filter((l) => /^-A KUBE-(PORTALS|NODEPORT)-HOST /.test(l))
      .map((l) => / --to-destination (\S+):\d+/.exec(l)?.[1]);
    expect(targets.length).toBeGreaterThan(0);
    expect(new Set(targets)).toEqual(new Set([DEFAULT_ROUTE_IP]));
  });

  it("the node reaches its own NodePort and the ClusterIP through the portals (upstream NewProxier: hostIP from ChooseHostInterface, not the Node object's)", async () => {
    const fromNode = async (address: string, port: number) =>
      podsHit(await requestFromNode(cluster, 'node-1', { proto: 'tcp', ip: address, port, count: 4, timeoutMs: 800 }));
    const total = (hits: Map<string, number>) => [...hits.values()].reduce((a, b) => a + b, 0);
    expect(total(await fromNode(NODE_IP, NODE_PORT))).toBe(4);
    expect(total(await fromNode('172.30.0.10', 80))).toBe(4);
  });
});

describe('userspace mode: a specific --bind-address that is not the node IP', () => {
  // Upstream's NewProxier: hostIP is listenIP (--bind-address) unless that is 0.0.0.0 / ::. The listeners are on it
  // only, so the node's own portal traffic must go there, not to the Node's address (nothing listens on it).
  let bindDir = '';

  beforeAll(async () => {
    await ip('addr', 'add', `${SECONDARY}/24`, 'dev', 'eth0');
    bindDir = await mkdtemp(join(tmpdir(), 'kpt-npa-bind-'));
    await writeFile(join(bindDir, 'cluster.yaml'), objects.map((d) => dump(d)).join('---\n'));
    agent = await startAgentProcess(
      node(),
      [
        '--proxy-mode',
        'userspace',
        '--bind-address',
        SECONDARY,
        '--iptables-backend',
        'nft',
        '--objects',
        bindDir,
        '--hostname-override',
        'node-1',
        '--cluster-cidr',
        '10.244.0.0/16',
        '--iptables-min-sync-period',
        '0s',
        '--healthz-bind-address',
        '',
        '--metrics-bind-address',
        '',
      ],
      async () => (await cluster.exec(node(), 'iptables-nft-save', ['-t', 'nat'])).stdout.includes(`--to-destination ${SECONDARY}:`),
    );
  });

  afterAll(async () => {
    await agent?.stop();
    agent = null;
    if (bindDir) await rm(bindDir, { recursive: true, force: true });
    await ip('addr', 'del', `${SECONDARY}/24`, 'dev', 'eth0').catch(() => undefined);
  });

  it('the node reaches the ClusterIP and its own NodePort through the listeners on the bind address (upstream NewCustomProxier: hostIP := listenIP)', async () => {
    const fromNode = async (address: string, port: number) =>
      podsHit(await requestFromNode(cluster, 'node-1', { proto: 'tcp', ip: address, port, count: 4, timeoutMs: 800 }));
    const total = (hits: Map<string, number>) => [...hits.values()].reduce((a, b) => a + b, 0);
    expect(total(await fromNode('172.30.0.10', 80))).toBe(4);
    expect(total(await fromNode(NODE_IP, NODE_PORT))).toBe(4);
  });
});
