/**
 * The image operators run: the repository's Dockerfile built with podman
 * from local stand-ins for its bases (test/image/), the agent in it the bundle
 * (dist/kube-proxy-ts.mjs, `npm run build`) with no node_modules; then the agent run from
 * it with `podman run --network host --privileged` inside a node's network
 * namespace (so the container's host network is that node), in each of the three modes,
 * through the process tests' scenario: rules programmed, traffic through a
 * ClusterIP and a NodePort, an endpoint change followed, SIGTERM -> exit 0.
 *
 * Needs root, podman, runc and debootstrap (.ci/run installs them) and the
 * network (apt and npm inside the build). The first run bootstraps the Debian
 * stand-in (cached in /var/cache/kube-proxy-ts-test/ afterwards).
 */
import { mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIptables } from '../iptables/restore.ts';
import { startAgentProcess, waitFor, type AgentProcess } from './agent-runner.ts';
import { makeEndpointSlice, makeNode, makeService } from './builders.ts';
import { buildTestImage, type ImageBuild } from './image/build-image.ts';
import { remountCgroupsScript } from './image/cgroup-mounts.ts';
import { createPodman, type Podman } from './image/podman.ts';
import { createCluster, type Cluster } from './netns/cluster.ts';
import type { PodServers } from './netns/servers.ts';
import { podsHit, request } from './netns/traffic.ts';
import { complaints, logLines } from './log-lines.ts';

const ROOT = new URL('..', import.meta.url).pathname.replace(/\/$/, '');
/** Measured 176.7 MB (README); the budget catches a regression such as npm, apt or node_modules coming back (~36 MB). */
const SIZE_BUDGET_BYTES = 195e6;
const POD = { 'pod-a': '10.244.1.2', 'pod-b': '10.244.1.3' } as const;
const NODE_IP = '192.168.50.11';

let podman: Podman;
let build: ImageBuild;
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

beforeAll(async () => {
  podman = await createPodman(await mkdtemp(join(tmpdir(), 'kpt-image-')));
  const t0 = Date.now();
  build = await buildTestImage(podman, { repo: ROOT, log: (l) => console.log(l) });
  console.log(
    `image ${build.image}: ${mb(build.bytes)}, built in ${((Date.now() - t0) / 1000).toFixed(1)} s ` +
      `(stand-in root ${build.rootfsCached ? 'cached' : 'bootstrapped'} ${(build.ms.rootfs / 1000).toFixed(1)} s, stand-ins ${(build.ms.standIns / 1000).toFixed(1)} s, podman build ${(build.ms.build / 1000).toFixed(1)} s)`,
  );
  for (const l of build.layers.filter((x) => x.bytes > 1e6)) console.log(`  ${mb(l.bytes).padStart(9)}  ${l.createdBy.slice(0, 100)}`);
}, 1_500_000);

afterAll(async () => {
  await podman?.destroy();
}, 120_000);

/** Runs a shell command in a throwaway container of the image (no network, no namespace needed). */
const inImage = (script: string) =>
  podman.run(['run', '--rm', '--network', 'none', '--entrypoint', 'sh', build.image, '-c', script], { timeoutMs: 60_000 });

describe('the image built from the Dockerfile', () => {
  it(`holds the runtime and nothing of the build, within ${mb(SIZE_BUDGET_BYTES)}`, async () => {
    expect(build.bytes).toBeLessThan(SIZE_BUDGET_BYTES);
    const facts = await inImage(
      [
        'node --version',
        'command -v npm npx corepack yarn apt-get dpkg perl || echo no-package-managers',
        // The bundle and its compile cache only: no sources, no package.json, no dependencies in node_modules.
        'echo $(ls -A /app)',
        'echo $(ls -A /app/node_modules)',
        'ls /app/dist | grep -c "[.]mjs$"',
        'ls -A /var/lib/apt/lists 2>/dev/null | wc -l',
        'find /usr/share/doc /usr/share/man /usr/share/locale -type f ! -name copyright ! -name locale.alias 2>/dev/null | wc -l',
      ].join('; '),
    );
    const lines = facts.trim().split('\n');
    expect(lines).toEqual([expect.stringMatching(/^v24\./), 'no-package-managers', 'dist node_modules', '.cache', expect.any(String), '0', '0']);
    expect(Number(lines[4])).toBeGreaterThan(5);
  });

  it('carries both iptables backends, nft, conntrack, ip, ipset and nfacct, and kube-proxy-ts on PATH', async () => {
    const out = await inImage(
      'iptables-nft --version && iptables-legacy --version && ip6tables-nft-restore --version && nft --version && conntrack --version && ip -V && ipset --help | head -n 1 && nfacct version && kube-proxy-ts --help | head -n 2',
    );
    expect(out).toMatch(/nftables v1\.\d+\.\d+/);
    expect(out).toMatch(/iptables v1\.8\.\d+ \(nf_tables\)/);
    expect(out).toMatch(/iptables v1\.8\.\d+ \(legacy\)/);
    expect(out).toMatch(/conntrack v1\.4/);
    expect(out).toMatch(/ip utility, iproute2/);
    expect(out).toMatch(/ipset v7\.\d+/);
    expect(out).toMatch(/nfacct v1\.\d+/);
    expect(out).toContain('kube-proxy-ts [flags]');
  });

  it('runs the bundle (ENTRYPOINT and PATH), every chunk the agent loads from the compile cache warmed at build; one malloc arena', async () => {
    const entrypoint = JSON.parse(await podman.run(['image', 'inspect', '--format', '{{json .Config.Entrypoint}}', build.image])) as string[];
    expect(entrypoint).toEqual(['node', '--max-semi-space-size=2', '/app/dist/kube-proxy-ts.mjs']);
    const out = await inImage(
      [
        'readlink -f "$(command -v kube-proxy-ts)"',
        'head -n 1 /app/dist/kube-proxy-ts.mjs',
        // The agent's path through the code (flags, configuration, every module the agent imports) short of starting
        // it: --write-config-to exits after writing the configuration. Node reports each ES module's cache lookup.
        'NODE_DEBUG_NATIVE=COMPILE_CACHE node --max-semi-space-size=2 /app/dist/kube-proxy-ts.mjs --hostname-override n1 --write-config-to /tmp/c.yaml 2>&1 ' +
          '| grep -o "V8 code cache for ESM file:///[^ ]* was [a-z ]*"',
        // One malloc arena and a fixed trim threshold (BENCHMARKS.md): in the environment the agent starts with.
        'echo MALLOC_ARENA_MAX=$MALLOC_ARENA_MAX MALLOC_TRIM_THRESHOLD_=$MALLOC_TRIM_THRESHOLD_',
      ].join('; '),
    );
    const lines = out.trim().split('\n');
    expect(lines.slice(0, 2)).toEqual(['/app/dist/kube-proxy-ts.mjs', '#!/usr/bin/env -S node --max-semi-space-size=2']);
    expect(lines.at(-1)).toBe('MALLOC_ARENA_MAX=1 MALLOC_TRIM_THRESHOLD_=131072');
    const lookups = lines.slice(2, -1);
    // main.mjs, the run chunk and the chunk holding client-node at least; every one found and accepted.
    expect(lookups.length).toBeGreaterThan(4);
    expect(lookups.filter((l) => !/^V8 code cache for ESM file:\/\/\/app\/dist\/[^ ]+\.mjs was accepted/.test(l))).toEqual([]);
    expect(lookups.some((l) => l.includes('/app/dist/main.mjs'))).toBe(true);
  });
});

/** The process on this machine that runs the bundle as the image's ENTRYPOINT does, with these arguments, or null. */
async function bundleProcessWith(arg: string): Promise<string | null> {
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    const argv = cmd.split('\0');
    if (argv[0] === 'node' && argv[1] === '--max-semi-space-size=2' && argv[2] === '/app/dist/kube-proxy-ts.mjs' && argv.includes(arg)) return pid;
  }
  return null;
}

/** The script that runs podman inside `ip netns exec`: the cgroup hierarchies mounted again, then podman. */
async function inNamespacePrefix(): Promise<string[]> {
  const links = [];
  for (const e of await readdir('/sys/fs/cgroup', { withFileTypes: true }))
    if (e.isSymbolicLink()) links.push({ name: e.name, target: await readlink(join('/sys/fs/cgroup', e.name)) });
  const script = remountCgroupsScript(await readFile('/proc/self/mountinfo', 'utf8'), links);
  return ['sh', '-c', `${script}\nexec "$@"`, 'sh'];
}

describe.each(['iptables', 'nftables', 'userspace'] as const)('the agent from the image in %s mode, in a node namespace', (mode) => {
  let cluster: Cluster;
  let servers: PodServers;
  let dir: string;
  let agent: AgentProcess | undefined;
  let node1: string;

  const objects = (pod: keyof typeof POD) => [
    makeNode('node-1', { addresses: [NODE_IP], podCIDR: '10.244.1.0/24' }),
    makeService('ns1', 'web', { type: 'NodePort', clusterIP: '172.30.0.10', ports: [{ name: 'p80', port: 80, targetPort: 8080, nodePort: 30080 }] }),
    makeEndpointSlice('ns1', 'web', 'web-1', { endpoints: [{ ip: POD[pod], nodeName: 'node-1' }], ports: [{ name: 'p80', port: 8080 }] }),
  ];
  const write = (pod: keyof typeof POD) =>
    writeFile(
      join(dir, 'cluster.yaml'),
      objects(pod)
        .map((d) => dump(d))
        .join('---\n'),
    );
  const nat = async () => createIptables({ family: 'IPv4', backend: 'nft', runner: cluster.runnerIn(node1) }).save(['nat']);
  const nftTable = async () => (await cluster.exec(node1, 'nft', ['list', 'table', 'ip', 'kube-proxy'])).stdout;
  const programmed = async () =>
    mode === 'nftables'
      ? (await nftTable()).includes('172.30.0.10 . tcp . 80 : goto service-')
      : (mode === 'iptables' ? /-A KUBE-SERVICES -d 172\.30\.0\.10\/32/ : /-A KUBE-PORTALS-CONTAINER -d 172\.30\.0\.10\/32/).test(await nat());
  /** Every request through the ClusterIP and the NodePort, from the client outside the node, answered by `pod`. */
  async function reaches(pod: keyof typeof POD): Promise<boolean> {
    for (const [ip, port] of [
      ['172.30.0.10', 80],
      [NODE_IP, 30080],
    ] as const) {
      const hit = podsHit(await request(cluster, cluster.client!.ns, { proto: 'tcp', ip, port, count: 3, timeoutMs: 800 }));
      if (hit.size !== 1 || hit.get(pod) !== 3) return false;
    }
    return true;
  }
  const converge = (what: string, check: () => Promise<boolean>) =>
    waitFor(`${mode}: ${what}`, check, 20_000, () => agent?.output().slice(-2000) ?? '');

  beforeAll(async () => {
    cluster = await createCluster({
      prefix: `kptimg${mode[0]}`,
      client: true,
      nodes: [
        {
          name: 'node-1',
          podCIDR: '10.244.1.0/24',
          pods: [
            { name: 'pod-a', ip: POD['pod-a'] },
            { name: 'pod-b', ip: POD['pod-b'] },
          ],
        },
      ],
    });
    node1 = cluster.node('node-1').ns;
    servers = await cluster.startPodServers({ tcp: [8080] });
    dir = await mkdtemp(join(tmpdir(), 'kpt-image-objects-'));
    await write('pod-a');
  });

  afterAll(async () => {
    if (agent) await agent.stop();
    await servers?.stop();
    await cluster?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('starts with podman run --network host --privileged and a read-only root filesystem, and programs the rules', async () => {
    // The node's xtables lock, created when missing (the DaemonSet's hostPath is FileOrCreate).
    await writeFile('/run/xtables.lock', '', { flag: 'a' });
    const run = podman.argv([
      'run',
      '--rm',
      '--name',
      `kpt-image-${mode}`,
      '--network',
      'host',
      '--privileged',
      // As Kubernetes runs the DaemonSet's container (manifests/, readOnlyRootFilesystem: true): /tmp and /run
      // read-only, /dev/shm the runtime's writable tmpfs.
      '--read-only',
      '--read-only-tmpfs=false',
      '--tmpfs',
      '/dev/shm:rw,size=64m',
      '-v',
      `${dir}:/etc/kube-proxy-ts/objects:ro`,
      '-v',
      '/run/xtables.lock:/run/xtables.lock',
      build.image,
    ]);
    agent = await startAgentProcess(
      node1,
      [
        `--mode=${mode}`,
        '--objects',
        '/etc/kube-proxy-ts/objects',
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
      ],
      programmed,
      60_000,
      { command: [...(await inNamespacePrefix()), ...run] },
    );
    expect(logLines(agent.output()).filter((l) => l.msg === 'starting kube-proxy-ts' && l.fields['mode'] === mode)).toHaveLength(1);
    // Nothing it needs to write is on the read-only root: the nftables mode stages its transactions in /dev/shm.
    expect(agent.output()).not.toMatch(/EROFS|Read-only file system|cannot stage/);
    // The container's process (seen in this machine's /proc) is node running the bundle.
    const pid = await bundleProcessWith(`--mode=${mode}`);
    expect(pid).not.toBeNull();
    // Its root is read-only indeed, /dev/shm not; the nftables mode's staging directory is there.
    const inContainer = (script: string) => cluster.exec(node1, 'nsenter', ['-t', pid!, '-m', 'sh', '-c', script]);
    expect((await inContainer('touch /tmp/probe')).stderr).toMatch(/Read-only file system/);
    expect((await inContainer('ls -d /dev/shm/kube-proxy-nft-* 2>/dev/null | wc -l')).stdout.trim()).toBe(mode === 'nftables' ? '1' : '0');
    // The node setup ran in the image (its tee, the privileged container's /proc/sys): upstream's 24 h, not the kernel's 5 days.
    expect(await cluster.net.getSysctl(node1, 'net.netfilter.nf_conntrack_tcp_timeout_established')).toBe('86400');
  });

  it('carries ClusterIP and NodePort traffic to the endpoint, and follows an endpoint change', async () => {
    await converge('traffic to pod-a', () => reaches('pod-a'));
    await write('pod-b');
    await converge('endpoint moved to pod-b', () => reaches('pod-b'));
  });

  it('exits 0 on SIGTERM and leaves the rules in place', async () => {
    const code = await agent!.stop();
    expect(code).toBe(0);
    expect(agent!.output()).toContain('rules left in place');
    expect(await programmed()).toBe(true);
    if (mode !== 'userspace') expect(await reaches('pod-b')).toBe(true);
  });

  // Upstream's recipe for an agent without privileges: a privileged init container runs --init-only, then the agent
  // runs with NET_ADMIN and NET_RAW alone, and so with podman's read-only /proc/sys.
  if (mode === 'iptables')
    it('runs as an unprivileged agent (NET_ADMIN and NET_RAW only) after --init-only in a privileged container, and says nothing about sysctls', async () => {
      const prefix = await inNamespacePrefix();
      await cluster.net.setSysctls(node1, {
        'net.netfilter.nf_conntrack_tcp_timeout_established': 432000,
        'net.ipv4.conf.all.route_localnet': 0,
      });
      const init = await cluster.exec(node1, prefix[0]!, [
        ...prefix.slice(1),
        ...podman.argv(['run', '--rm', '--network', 'host', '--privileged', build.image, '--init-only']),
      ]);
      expect(init.code, init.stdout + init.stderr).toBe(0);
      expect(await cluster.net.getSysctl(node1, 'net.netfilter.nf_conntrack_tcp_timeout_established')).toBe('86400');
      expect(await cluster.net.getSysctl(node1, 'net.ipv4.conf.all.route_localnet')).toBe('1');

      const unprivilegedRun = ['run', '--rm', '--network', 'host', '--cap-drop=all', '--cap-add=NET_ADMIN', '--cap-add=NET_RAW'];
      // Such a container cannot write /proc/sys: the agent below could not have set a sysctl itself.
      const probe = await cluster.exec(node1, prefix[0]!, [
        ...prefix.slice(1),
        ...podman.argv([...unprivilegedRun, '--entrypoint', 'sh', build.image, '-c', 'echo 1 > /proc/sys/net/ipv4/conf/all/route_localnet']),
      ]);
      expect(probe.code).not.toBe(0);
      expect(probe.stderr).toMatch(/Read-only file system/);

      await write('pod-a'); // the last agent left pod-b's rules: reaching pod-a says this one has synced
      const run = podman.argv([
        ...unprivilegedRun,
        '--name',
        'kpt-image-unprivileged',
        '-v',
        `${dir}:/etc/kube-proxy-ts/objects:ro`,
        '-v',
        '/run/xtables.lock:/run/xtables.lock',
        build.image,
      ]);
      const unprivileged = await startAgentProcess(
        node1,
        ['--objects', '/etc/kube-proxy-ts/objects', '--hostname-override', 'node-1', '--cluster-cidr', '10.244.0.0/16', '--metrics-bind-address', ''],
        () => reaches('pod-a'),
        60_000,
        { command: [...prefix, ...run] },
      );
      try {
        const said = complaints(unprivileged.output())
          .map((l) => l.text)
          .filter((l) => /sysctl|route_localnet|conntrack/.test(l));
        expect(said).toEqual([]);
        await write('pod-b');
        await converge('unprivileged agent: endpoint moved to pod-b', () => reaches('pod-b'));
      } finally {
        expect(await unprivileged.stop()).toBe(0);
      }
    });
});
