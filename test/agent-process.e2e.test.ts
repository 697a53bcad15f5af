/**
 * The agent as operators run it: the real `kube-proxy-ts` process started
 * inside a node's network namespace with `--objects` (the embedded default,
 * no API server), followed through file edits, a broken file, and SIGTERM;
 * and with a --config file in a ConfigMap volume that kubelet updates.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIptables } from '../iptables/restore.ts';
import { startAgentProcess, waitFor } from './agent-runner.ts';
import { makeEndpointSlice, makeNode, makeService } from './builders.ts';
import { createCluster, NODE_1_TWO_PODS, type Cluster } from './netns/cluster.ts';
import type { PodServers } from './netns/servers.ts';
import { podsHit, request } from './netns/traffic.ts';

const MAIN = new URL('../src/main.ts', import.meta.url).pathname;
let cluster: Cluster;
let servers: PodServers;
let dir: string;
let agent: ChildProcess;
let output = '';

const objects = (pod: 'pod-a' | 'pod-b') => [
  makeNode('node-1', { addresses: ['192.168.50.11'], podCIDR: '10.244.1.0/24' }),
  makeService('ns1', 'web', { clusterIP: '172.30.0.10', ports: [{ name: 'p80', port: 80, targetPort: 8080 }] }),
  makeEndpointSlice('ns1', 'web', 'web-1', {
    endpoints: [{ ip: pod === 'pod-a' ? '10.244.1.2' : '10.244.1.3', nodeName: 'node-1' }],
    ports: [{ name: 'p80', port: 8080 }],
  }),
];
const write = (docs: unknown[]) => writeFile(join(dir, 'cluster.yaml'), docs.map((d) => dump(d)).join('---\n'));

async function reaches(pod: string): Promise<boolean> {
  const hit = podsHit(await request(cluster, cluster.client!.ns, { proto: 'tcp', ip: '172.30.0.10', port: 80, count: 4, timeoutMs: 800 }));
  return hit.size === 1 && hit.get(pod) === 4;
}

const converge = (what: string, check: () => Promise<boolean>) => waitFor(what, check, 15_000, () => output.slice(-2000));

beforeAll(async () => {
  cluster = await createCluster({
    prefix: 'kptproc',
    client: true,
    nodes: [NODE_1_TWO_PODS],
  });
  servers = await cluster.startPodServers({ tcp: [8080] });
  dir = await mkdtemp(join(tmpdir(), 'kpt-objects-'));
  await write(objects('pod-a'));
  agent = spawn(
    'ip',
    [
      'netns',
      'exec',
      cluster.node('node-1').ns,
      process.execPath,
      '--max-semi-space-size=2',
      MAIN,
      '--objects',
      dir,
      '--hostname-override',
      'node-1',
      '--cluster-cidr',
      '10.244.0.0/16',
      '--iptables-min-sync-period',
      '0s',
      '--healthz-bind-address',
      '127.0.0.1:10256',
      '--metrics-bind-address',
      '127.0.0.1:10249',
      // upstream's /debug/flags/v (DebugFlags), served with --profiling
      '--profiling',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  agent.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  agent.stderr!.on('data', (d: Buffer) => (output += d.toString()));
});

afterAll(async () => {
  if (agent && agent.exitCode === null) agent.kill('SIGKILL');
  await servers?.stop();
  await cluster?.destroy();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('kube-proxy-ts --objects as a process in a node namespace', () => {
  it('programs the objects it reads and follows edits of the file', async () => {
    await converge('initial rules', () => reaches('pod-a'));
    // What it runs with, where upstream serves it (the metrics server's /configz).
    const got = await cluster.exec(cluster.node('node-1').ns, process.execPath, [
      '-e',
      'fetch("http://127.0.0.1:10249/configz").then((r) => r.text()).then(console.log, (e) => console.log(String(e)))',
    ]);
    const configz = JSON.parse(got.stdout) as Record<string, Record<string, unknown>>;
    expect(configz['kubeproxy.config.k8s.io']).toMatchObject({
      kind: 'KubeProxyConfiguration',
      mode: 'iptables',
      hostnameOverride: 'node-1',
      clusterCIDR: '10.244.0.0/16',
      iptables: { minSyncPeriod: '0s' },
    });
    // -v raised while it runs (upstream's /debug/flags/v, with --profiling): the syncs' debug lines appear from then on.
    const put = async (method: string, body: string): Promise<string> =>
      (
        await cluster.exec(cluster.node('node-1').ns, process.execPath, [
          '-e',
          `fetch("http://127.0.0.1:10249/debug/flags/v", { method: ${JSON.stringify(method)}, ${method === 'PUT' ? `body: ${JSON.stringify(body)}` : ''} }).then(async (r) => console.log(r.status, await r.text()))`,
        ])
      ).stdout.trim();
    expect(output).not.toContain('synced iptables rules');
    expect(await put('GET', '')).toBe('406 unsupported http method');
    expect(await put('PUT', 'two')).toBe('400 failed set klog.logging.verbosity two: strconv.ParseInt: parsing "two": invalid syntax');
    expect(await put('PUT', '2')).toBe('200 successfully set klog.logging.verbosity to 2');
    await write(objects('pod-b'));
    await converge('file edit', () => reaches('pod-b'));
    await converge('a debug line for the sync', async () =>
      /^I\d{4} .* iptables-mode\.ts:\d+\] "synced iptables rules" ipFamily="IPv4" full=false/m.test(output),
    );
    expect(await put('PUT', '0')).toBe('200 successfully set klog.logging.verbosity to 0');
  });

  it('keeps the last good state when the file breaks, and names the file', async () => {
    await writeFile(join(dir, 'cluster.yaml'), 'apiVersion: v1\nkind: Service\nmetadata: {name: [\n');
    await converge('problem logged', async () => /cluster\.yaml.*(YAML|syntax)/.test(output));
    expect(await reaches('pod-b')).toBe(true);
    await write(objects('pod-a'));
    await converge('file fixed', () => reaches('pod-a'));
  });

  it('stops cleanly on SIGTERM and leaves the rules in place', async () => {
    const exited = new Promise<number | null>((resolve) => agent.once('exit', (code) => resolve(code)));
    agent.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 10_000))]);
    expect(code).toBe(0);
    expect(output).toContain('rules left in place');
    const nat = await createIptables({ family: 'IPv4', backend: 'nft', runner: cluster.runnerIn(cluster.node('node-1').ns) }).save(['nat']);
    expect(nat).toContain(':KUBE-SERVICES');
    expect(await reaches('pod-a')).toBe(true);
  });

  it('with --config in a ConfigMap volume: new content that does not load is named and the agent serves on; new content that loads ends it with status 1, as upstream', async () => {
    // kubelet's AtomicWriter layout: config.conf -> ..data/config.conf, ..data -> ..<version>.
    const cm = join(dir, 'cm');
    let version = 0;
    const put = async (text: string): Promise<void> => {
      const v = `..2026_12_05_00_00_0${version++}.000000001`;
      await mkdir(join(cm, v), { recursive: true });
      await writeFile(join(cm, v, 'config.conf'), text);
      const old = await readlink(join(cm, '..data')).catch(() => null);
      await symlink(v, join(cm, '..data_tmp'));
      await rename(join(cm, '..data_tmp'), join(cm, '..data'));
      if (old) await rm(join(cm, old), { recursive: true });
      else await symlink('..data/config.conf', join(cm, 'config.conf'));
    };
    const config = (extra = '') =>
      [
        'apiVersion: kubeproxy.config.k8s.io/v1alpha1',
        'kind: KubeProxyConfiguration',
        'mode: iptables',
        'clusterCIDR: 10.244.0.0/16',
        'iptables: {minSyncPeriod: 0s}',
        'metricsBindAddress: ""',
        extra,
      ].join('\n');
    await put(config());
    const configured = await startAgentProcess(
      cluster.node('node-1').ns,
      ['--config', join(cm, 'config.conf'), '--objects', dir, '--hostname-override', 'node-1'],
      () => reaches('pod-a'),
    );
    const exited = new Promise<number | null>((resolve) => configured.child.once('exit', (code) => resolve(code)));
    try {
      // The rules of the agents before answer already: wait for this one to have loaded its file.
      await waitFor(
        'the agent started',
        async () => configured.output().includes('starting kube-proxy-ts'),
        10_000,
        () => configured.output(),
      );
      await put(config('mode: nftable\n'));
      await waitFor(
        'the unusable config named',
        async () => configured.output().includes('the --config file changed, but the new content cannot be used'),
        10_000,
        () => configured.output().slice(-2000),
      );
      expect(configured.output()).toMatch(
        /the new content cannot be used: .*config\.conf.*nftable.*still running with the configuration it started with/,
      );
      await new Promise((r) => setTimeout(r, 500));
      expect(configured.child.exitCode).toBeNull();
      expect(await reaches('pod-a')).toBe(true);
      await put(config('conntrack: {maxPerCore: 0}\n'));
      const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 10_000))]);
      expect(code).toBe(1);
      expect(configured.output()).toContain("content of the proxy server's configuration file was updated: exiting to be started again with it");
      expect(await reaches('pod-a')).toBe(true);
    } finally {
      await configured.stop();
    }
  });
});
