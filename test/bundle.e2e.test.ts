/**
 * The agent from the bundle (`npm run build`, what the image runs), as a process in a node's network namespace,
 * against the fake API server over TLS (a socat relay on the node's :6443): client-node's informers, watch and
 * Events, prom-client's /metrics, pino's logs, iptables-restore and nft through execa and the nft session, all from
 * the bundled code. In iptables mode: rules, traffic through the ClusterIP, an endpoint change, the Starting Event,
 * `diff` from the bundle reporting converged, exit 0 on SIGTERM with the rules left; then nftables mode on the same node.
 * The bundle is built by the test into a directory with no node_modules above it (build/bundle.test.ts compares the
 * other subcommands' output with src/entry.js).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBundle } from '../build/bundle.ts';
import { createIptables } from '../iptables/restore.ts';
import { startAgentProcess, waitFor, type AgentProcess } from './agent-runner.ts';
import { makeEndpointSlice, makeNode, makeService } from './builders.ts';
import { FakeApiServer, kubeConfigFor } from './fake-apiserver.ts';
import { relayApiServer, type Relay } from './fake-apiserver-node.ts';
import { createCluster, type Cluster } from './netns/cluster.ts';
import type { PodServers } from './netns/servers.ts';
import { podsHit, request } from './netns/traffic.ts';
import { logLines } from './log-lines.ts';

const SVC_IP = '172.30.0.10';
const pods = { 'pod-a': '10.244.1.2', 'pod-b': '10.244.1.3' } as const;
let cluster: Cluster;
let servers: PodServers;
let api: FakeApiServer;
let relay: Relay;
let dir: string;
let executable: string;
let kubeconfig: string;
let node1: string;
let agent: AgentProcess | undefined;

const slice = (pod: keyof typeof pods) =>
  makeEndpointSlice('ns1', 'web', 'web-1', { endpoints: [{ ip: pods[pod], nodeName: 'node-1' }], ports: [{ name: 'p80', port: 8080 }] });
const args = (mode: string) => [
  ...['--kubeconfig', kubeconfig, '--mode', mode, '--hostname-override', 'node-1', '--cluster-cidr', '10.244.0.0/16'],
  // The iptables mode's sync lines (-v 2) and no other file's.
  '--vmodule=iptables-mode=2',
  ...['--iptables-min-sync-period', '0s', '--healthz-bind-address', '127.0.0.1:10256', '--metrics-bind-address', '127.0.0.1:10249'],
];
/** The line (1-based) of a source file where the logging call that writes `message` starts (`.info(`, `.debug(`...). */
function sourceLine(file: string, message: string): number {
  const lines = readFileSync(join(import.meta.dirname, '..', file), 'utf8').split('\n');
  const at = lines.findIndex((l) => l.includes(`'${message}'`));
  const call = lines.findLastIndex((l, n) => n <= at && /\.(info|warn|error|debug)\(/.test(l));
  if (at < 0 || call < 0) throw new Error(`no logging call writes ${message} in ${file}`);
  return call + 1;
}

/** The bundle in node-1's namespace, as the image's ENTRYPOINT runs it. */
const command = () => [process.execPath, '--max-semi-space-size=2', executable];

async function reaches(pod: keyof typeof pods): Promise<boolean> {
  const hit = podsHit(await request(cluster, cluster.client!.ns, { proto: 'tcp', ip: SVC_IP, port: 80, count: 4, timeoutMs: 800 }));
  return hit.size === 1 && hit.get(pod) === 4;
}
const nat = () => createIptables({ family: 'IPv4', backend: 'nft', runner: cluster.runnerIn(node1) }).save(['nat']);
const converge = (what: string, check: () => Promise<boolean>) => waitFor(what, check, 20_000, () => agent?.output().slice(-2000) ?? '');
/** An HTTP GET from inside node-1 (the agent's servers listen on its loopback). */
const get = async (url: string) =>
  (await cluster.exec(node1, process.execPath, ['-e', `fetch(${JSON.stringify(url)}).then(async (r) => console.log(r.status, await r.text()))`]))
    .stdout;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kpt-bundle-e2e-'));
  executable = (await buildBundle({ outDir: join(dir, 'dist') })).executable;
  cluster = await createCluster({
    prefix: 'kptbndl',
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
    ],
  });
  node1 = cluster.node('node-1').ns;
  servers = await cluster.startPodServers({ tcp: [8080] });
  api = await FakeApiServer.start();
  await api.listenUnix(join(dir, 'api.sock'));
  relay = await relayApiServer((ns, cmd, a) => cluster.exec(ns, cmd, a), node1, 6443, join(dir, 'api.sock'));
  kubeconfig = join(dir, 'kubeconfig');
  await writeFile(kubeconfig, kubeConfigFor({ url: 'https://127.0.0.1:6443', pki: api.pki }).exportConfig());
  api.create('nodes', makeNode('node-1', { addresses: [cluster.node('node-1').ip], podCIDR: '10.244.1.0/24' }) as never);
  api.create('services', makeService('ns1', 'web', { clusterIP: SVC_IP, ports: [{ name: 'p80', port: 80, targetPort: 8080 }] }) as never);
  api.create('endpointslices', slice('pod-a') as never);
}, 180_000);

afterAll(async () => {
  await agent?.stop();
  await relay?.stop();
  await api?.close();
  await servers?.stop();
  await cluster?.destroy();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the agent from the bundle, against the fake API server', () => {
  it('iptables mode: programs the rules, follows an endpoint change, records its Event, serves metrics', async () => {
    agent = await startAgentProcess(node1, args('iptables'), async () => (await nat()).includes(`-d ${SVC_IP}/32`), 30_000, {
      command: command(),
      env: { MALLOC_ARENA_MAX: '1' },
    });
    await converge('traffic to pod-a', () => reaches('pod-a'));
    api.update('endpointslices', slice('pod-b') as never);
    await converge('endpoint moved to pod-b', () => reaches('pod-b'));
    await api.until(() => api.events.some((e) => e['reason'] === 'Starting'), 'the Starting event');
    expect(api.events.find((e) => e['reason'] === 'Starting')).toMatchObject({ regarding: { kind: 'Node', name: 'node-1' } });
    const metrics = await get('http://127.0.0.1:10249/metrics');
    expect(metrics).toMatch(/^200 /);
    expect(metrics).toMatch(/^kubeproxy_sync_proxy_rules_duration_seconds_count(\{[^}]*\})? [1-9]/m);
    expect(metrics).toContain('process_resident_memory_bytes');
    expect(await get('http://127.0.0.1:10256/healthz')).toMatch(/^200 /);
    // klog's text format, the default: the header names the source file and line that logged it, as from the sources
    // (callers.json), not the bundle's chunk, pino or unknown.
    const lines = logLines(agent.output());
    const started = lines.find((l) => l.msg === 'starting kube-proxy-ts');
    expect(started?.text).toMatch(
      new RegExp(
        `^I\\d{4} \\d\\d:\\d\\d:\\d\\d\\.\\d{6} +\\d+ agent\\.ts:${sourceLine('src/agent.ts', 'starting kube-proxy-ts')}\\] "starting kube-proxy-ts" node="`,
      ),
    );
    expect(lines.map((l) => /^[IWEF]\S+ \S+ +\d+ ([^\s\]]+):\d+\]/.exec(l.text)?.[1]).filter((file) => !file?.endsWith('.ts'))).toEqual([]);
    // --vmodule=iptables-mode=2: the iptables mode's debug line for each sync, from its line in the sources.
    const synced = lines.filter((l) => l.msg === 'synced iptables rules');
    expect(synced.length).toBeGreaterThanOrEqual(2);
    expect(new Set(synced.map((l) => l.text.split(']')[0]!.split(' ').pop()))).toEqual(
      new Set([`iptables-mode.ts:${sourceLine('iptables/iptables-mode.ts', 'synced iptables rules')}`]),
    );
  });

  it('diff from the bundle reports the node converged', async () => {
    const r = await new Promise<{ code: number; out: string }>((resolve) =>
      execFile(
        'ip',
        [
          'netns',
          'exec',
          node1,
          ...command(),
          'diff',
          '--kubeconfig',
          kubeconfig,
          '--hostname-override',
          'node-1',
          '--cluster-cidr',
          '10.244.0.0/16',
        ],
        (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
      ),
    );
    expect(r.out).toContain('IPv4: converged');
    expect(r.code).toBe(0);
  });

  it('exits 0 on SIGTERM and leaves the rules in place', async () => {
    expect(await agent!.stop()).toBe(0);
    expect(agent!.output()).toContain('rules left in place');
    expect(await reaches('pod-b')).toBe(true);
    agent = undefined;
  });

  it('nftables mode: takes over from the iptables rules and carries the traffic', async () => {
    const table = async () => (await cluster.exec(node1, 'nft', ['list', 'table', 'ip', 'kube-proxy']).catch(() => ({ stdout: '' }))).stdout;
    agent = await startAgentProcess(node1, args('nftables'), async () => (await table()).includes(`${SVC_IP} . tcp . 80 : goto service-`), 30_000, {
      command: command(),
      env: { MALLOC_ARENA_MAX: '1' },
    });
    await converge('nftables: traffic to pod-b', () => reaches('pod-b'));
    expect(await nat()).not.toContain('-A KUBE-SERVICES');
    api.update('endpointslices', slice('pod-a') as never);
    await converge('nftables: endpoint moved to pod-a', () => reaches('pod-a'));
    expect(await agent.stop()).toBe(0);
    agent = undefined;
  });
});
