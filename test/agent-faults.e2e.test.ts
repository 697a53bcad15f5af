/**
 * The agent process under faults a node really sees: SIGTERM landing while
 * iptables-restore writes a large burst, and the xtables lock held by someone
 * else for longer than the agent's `-w 5`; in nftables mode, SIGTERM and
 * SIGKILL landing between the chunks of a cold start; two agents writing
 * one node at once. The real `kube-proxy-ts` runs in a
 * node namespace with --objects; every wait is bounded and its time printed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IptablesBackend } from '../iptables/iptables.ts';
import { createIptables } from '../iptables/restore.ts';
import { scanSave } from '../iptables/parse-save.ts';
import { startAgentProcess, waitFor, type AgentProcess } from './agent-runner.ts';
import { makeEndpointSlice, makeNode, makeService } from './builders.ts';
import { createCluster, type Cluster } from './netns/cluster.ts';
import { errorLines, logLines } from './log-lines.ts';

const MAIN = new URL('../src/main.ts', import.meta.url).pathname;
let cluster: Cluster;
let dir: string;
const running: AgentProcess[] = [];

const node = () => makeNode('node-1', { addresses: ['192.168.50.11'], podCIDR: '10.244.1.0/24' });
/** Service i: 172.31.x.y:80 -> 10.244.1.2:8080. */
const service = (i: number) => [
  makeService('burst', `svc-${i}`, { clusterIP: `172.31.${i >> 8}.${i & 255}`, ports: [{ name: 'p80', port: 80, targetPort: 8080 }] }),
  makeEndpointSlice('burst', `svc-${i}`, `svc-${i}-1`, {
    endpoints: [{ ip: '10.244.1.2', nodeName: 'node-1' }],
    ports: [{ name: 'p80', port: 8080 }],
  }),
];
const objects = (services: number, first = 1) => [node(), ...Array.from({ length: services }, (_, k) => service(first + k)).flat()];
/**
 * The objects file replaced at once (written beside it, then renamed, as kubelet swaps a ConfigMap volume's files): the
 * agent never reads half of a 3,000-service file, which a load that lands mid-write would turn into two restores, the
 * burst's first half and then the rest, instead of the one restore the SIGTERM test times its signal into.
 */
const write = async (file: string, docs: unknown[]) => {
  await writeFile(`${file}.tmp`, docs.map((d) => dump(d)).join('---\n'));
  await rename(`${file}.tmp`, file);
};

const nat = (backend: IptablesBackend) =>
  createIptables({ family: 'IPv4', backend, runner: cluster.runnerIn(cluster.node('node-1').ns) }).save(['nat']);
const svcChains = (text: string) => (scanSave(text, 'IPv4').chains.get('nat') ?? []).filter((c) => c.startsWith('KUBE-SVC-')).length;

beforeAll(async () => {
  cluster = await createCluster({
    prefix: 'kptfault',
    nodes: [{ name: 'node-1', podCIDR: '10.244.1.0/24', pods: [{ name: 'pod-a', ip: '10.244.1.2' }] }],
  });
  dir = await mkdtemp(join(tmpdir(), 'kpt-faults-'));
});

afterAll(async () => {
  for (const a of running) await a.stop();
  await cluster?.destroy();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/**
 * An iptables-restore the agent is running now (its direct child, so started after it): the first found, at once (the
 * caller is racing it), or 0.
 */
async function restoreChild(agentPid: number): Promise<number> {
  for (const entry of await readdir('/proc')) {
    // Every pid: they wrap at pid_max (32768 on this machine), so a child's may be lower than its parent's.
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== agentPid) continue;
      if ((await readFile(`/proc/${entry}/cmdline`, 'utf8')).split('\0')[0]!.endsWith('-restore')) return Number(entry);
    } catch {
      // the process exited meanwhile
    }
  }
  return 0;
}

const alive = (pid: number) =>
  readFile(`/proc/${pid}/cmdline`, 'utf8').then(
    (c) => c.includes('-restore'),
    () => false,
  );

describe('kube-proxy-ts under faults', () => {
  // The legacy backend writes a burst in one iptables-restore (nft splits it into ~30 ms restores of ~170
  // services), so the signal can be timed to land inside a restore every time.
  it('stops cleanly on a SIGTERM that lands while iptables-restore writes a burst of 3,000 services, leaving the rules', async () => {
    const burst = 3000;
    const dirA = await mkdtemp(join(dir, 'a-'));
    const file = join(dirA, 'cluster.yaml');
    await write(file, objects(1));
    const agent = await startAgentProcess(
      cluster.node('node-1').ns,
      [
        '--objects',
        dirA,
        '--hostname-override',
        'node-1',
        '--cluster-cidr',
        '10.244.0.0/16',
        '--iptables-min-sync-period',
        '0s',
        '--iptables-backend',
        'legacy',
        // Each sync's debug line, so that a run whose restore was never seen says what the agent did.
        '-v',
        '2',
        '--healthz-bind-address',
        '127.0.0.1:10256',
        '--metrics-bind-address',
        '127.0.0.1:10249',
      ],
      async () => svcChains(await nat('legacy')) === 1,
      60_000,
    );
    running.push(agent);
    const child: ChildProcess = agent.child;
    const ended = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );

    await write(file, objects(burst + 1));
    // Time the signal: wait for the burst's iptables-restore to be running and stop it there (SIGSTOP: on a loaded
    // machine it could otherwise end between being seen and the signal), send SIGTERM to the agent, check the restore
    // is still there, and let it go on.
    let restorePid = 0;
    await waitFor(
      'the burst restore running',
      async () => {
        restorePid = await restoreChild(child.pid!);
        if (restorePid === 0) return false;
        try {
          process.kill(restorePid, 'SIGSTOP');
        } catch {
          return false; // gone already
        }
        return true;
      },
      60_000,
      () => agent.output().slice(-2000),
    );
    child.kill('SIGTERM');
    const t0 = Date.now();
    expect(await alive(restorePid), 'iptables-restore was still running after SIGTERM was sent').toBe(true);
    // The agent's handler runs on its event loop: give it time to see the signal while the restore is held.
    await new Promise((r) => setTimeout(r, 300));
    process.kill(restorePid, 'SIGCONT');

    const how = await Promise.race([ended, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 60_000))]);
    console.log(`SIGTERM mid-restore: exited ${JSON.stringify(how)} after ${Date.now() - t0} ms`);
    expect(how).toEqual({ code: 0, signal: null });
    expect(logLines(agent.output()).map((l) => l.msg)).toContain('stopping');
    expect(agent.output()).toContain('kube-proxy-ts stopped; rules left in place');
    // The sync the signal interrupted was finished, not cut: every service is programmed and stays.
    expect(svcChains(await nat('legacy'))).toBe(burst + 1);
  });

  it('fails the sync while the xtables lock is held past -w 5, counts it on /metrics, and converges after release', async () => {
    const dirB = await mkdtemp(join(dir, 'b-'));
    const file = join(dirB, 'cluster.yaml');
    // A private lock file for the agent's iptables (XTABLES_LOCKFILE, honoured by iptables-legacy 1.8.x): the
    // machine's /run/xtables.lock is never held by this test.
    const lock = join(dirB, 'xtables.lock');
    await writeFile(lock, '');
    await write(file, objects(1));
    const ns = cluster.node('node-1').ns;
    const agent = await startAgentProcess(
      ns,
      [
        '--objects',
        dirB,
        '--hostname-override',
        'node-1',
        '--cluster-cidr',
        '10.244.0.0/16',
        '--iptables-min-sync-period',
        '0s',
        '--iptables-sync-period',
        '3s',
        '--iptables-backend',
        'legacy',
        '--healthz-bind-address',
        '127.0.0.1:10266',
        '--metrics-bind-address',
        '127.0.0.1:10259',
      ],
      async () => svcChains(await nat('legacy')) === 1,
      60_000,
      { env: { XTABLES_LOCKFILE: lock } },
    );
    running.push(agent);
    const failures = async () => {
      const r = await cluster.runner.run(
        process.execPath,
        ['-e', "fetch('http://127.0.0.1:10259/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))"],
        { netns: ns },
      );
      const line = r.stdout.split('\n').find((l) => l.startsWith('kubeproxy_sync_proxy_rules_iptables_restore_failures_total'));
      if (r.code !== 0) throw new Error(`GET /metrics: ${r.stderr}`);
      // A labelled counter has no sample before its first increment.
      return line === undefined ? 0 : Number(line.split(' ').at(-1));
    };
    const before = await failures();
    expect(before).toBe(0);

    // Its own process group (flock and the sleep that inherits the lock), released as soon as the failure is seen;
    // 9 s bounds it if the test fails before.
    const holder = spawn('flock', [lock, 'sleep', '9'], { stdio: 'ignore', detached: true });
    const released = new Promise<void>((resolve) => holder.once('exit', () => resolve()));
    await waitFor('the lock held', async () => (await cluster.runner.run('flock', ['-n', lock, 'true'])).code !== 0, 5_000);
    const heldAt = Date.now();
    await write(file, objects(2));

    await waitFor(
      'a restore failure counted on /metrics',
      async () => (await failures()) > before,
      20_000,
      () => agent.output().slice(-2000),
    );
    expect(svcChains(await nat('legacy')), 'nothing was written while the lock was held').toBe(1);
    expect(agent.output()).toMatch(/xtables lock/);
    if (holder.exitCode === null && holder.signalCode === null) process.kill(-holder.pid!, 'SIGKILL');
    await released;
    console.log(`lock held for ${Date.now() - heldAt} ms`);
    const ms = await waitFor(
      'converged after the lock was released',
      async () => svcChains(await nat('legacy')) === 2,
      15_000,
      () => agent.output().slice(-2000),
    );
    expect(ms, 'retried within the sync period (3 s) plus one sync').toBeLessThan(3_000 + 2_000);

    expect(await agent.stop()).toBe(0);
  });
});

describe('kube-proxy-ts --mode=nftables under faults during the cold start of 3,000 services', () => {
  const burst = 3000;
  const ns = () => cluster.node('node-1').ns;
  /** Service chains in `ip kube-proxy`, or -1 while the table does not exist. */
  const serviceChains = async () => {
    const r = await cluster.exec(ns(), 'nft', ['list', 'chains', 'ip']);
    if (r.code !== 0) throw new Error(`nft list chains: ${r.stderr}`);
    if (!/table ip kube-proxy/.test(r.stdout)) return -1;
    return (r.stdout.match(/^\s*chain service-[A-Z2-7]{8}-/gm) ?? []).length; // not the fixed service-endpoints-check
  };
  const args = (objectsDir: string) => [
    '--proxy-mode=nftables',
    '--objects',
    objectsDir,
    '--hostname-override=node-1',
    '--cluster-cidr=10.244.0.0/16',
    '--iptables-min-sync-period=0s',
    '--healthz-bind-address=127.0.0.1:0',
    '--metrics-bind-address=',
  ];
  /** Starts the agent on the burst and returns once the cold start has committed some chunks but not all. */
  async function startMidColdStart(objectsDir: string): Promise<{ agent: AgentProcess; seen: number }> {
    await cluster.exec(ns(), 'nft', ['delete', 'table', 'ip', 'kube-proxy']); // a fresh node (absent: fine)
    await write(join(objectsDir, 'cluster.yaml'), objects(burst));
    let seen = -1;
    const agent = await startAgentProcess(
      ns(),
      args(objectsDir),
      async () => {
        seen = await serviceChains();
        return seen > 0 && seen < burst;
      },
      120_000,
    );
    running.push(agent);
    return { agent, seen };
  }

  it('SIGTERM between chunks: the agent finishes the whole cold start, exits 0 and leaves every service programmed', async () => {
    const objectsDir = await mkdtemp(join(dir, 'nft-term-'));
    const { agent, seen } = await startMidColdStart(objectsDir);
    const ended = new Promise<number | null>((resolve) => agent.child.once('exit', (code) => resolve(code)));
    agent.child.kill('SIGTERM');
    const t0 = Date.now();
    console.log(`SIGTERM with ${seen} of ${burst} service chains committed`);
    expect(await Promise.race([ended, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 120_000))])).toBe(0);
    console.log(`exited after ${Date.now() - t0} ms`);
    expect(agent.output()).toContain('kube-proxy-ts stopped; rules left in place');
    expect(await serviceChains()).toBe(burst);
  });

  it('SIGKILL mid cold start (an OOM kill): the restarted agent completes the half-built table; diff converged', async () => {
    const objectsDir = await mkdtemp(join(dir, 'nft-kill-'));
    const { agent, seen } = await startMidColdStart(objectsDir);
    agent.child.kill('SIGKILL');
    await new Promise((r) => agent.child.once('exit', r));
    const left = await serviceChains();
    console.log(`SIGKILL with ${seen} of ${burst} service chains committed; ${left} in the table after the kill`);
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThan(burst);

    const t0 = Date.now();
    const again = await startAgentProcess(ns(), args(objectsDir), async () => (await serviceChains()) === burst, 120_000);
    running.push(again);
    console.log(`the restarted agent had all ${burst} service chains after ${Date.now() - t0} ms`);
    const diff = await cluster.exec(ns(), process.execPath, [MAIN, 'diff', '--mode=nftables', ...args(objectsDir).slice(1, 5)]);
    expect(diff.code, diff.stdout.slice(-2000) + diff.stderr).toBe(0);
    expect(await again.stop()).toBe(0);
  });
});

// A DaemonSet rolled with maxSurge, or an operator's debugging run next to the DaemonSet's agent: two agents write
// the same node at once while the objects change. Neither is told about the other's writes; a transaction that
// meets the other's work fails (nftables: an element already deleted) and the next sync is full.
describe.each(['iptables', 'nftables'])('two kube-proxy-ts agents in %s mode on one node', (mode) => {
  it('both keep the node converged while 12 changes arrive, and the one left alone after the other stops', async () => {
    const objectsDir = await mkdtemp(join(dir, `two-${mode}-`));
    const file = join(objectsDir, 'cluster.yaml');
    /** 30 services; each round changes endpoints, affinity and which services have a slice. */
    const round = (r: number) => [
      node(),
      ...Array.from({ length: 30 }, (_, i) => [
        makeService('two', `web-${i}`, {
          type: 'NodePort',
          clusterIP: `172.30.1.${i + 10}`,
          ports: [{ name: 'p80', port: 80, targetPort: 8080, nodePort: 30100 + i }],
          ...(i % 3 === 0 && r % 2 === 1 ? { sessionAffinity: 'ClientIP' } : {}),
        }),
        ...((i + r) % 5 === 0
          ? []
          : [
              makeEndpointSlice('two', `web-${i}`, `web-${i}-1`, {
                endpoints: ['10.244.1.2', ...((r + i) % 2 ? [] : ['10.244.1.3'])].map((ip) => ({ ip, nodeName: 'node-1' })),
                ports: [{ name: 'p80', port: 8080 }],
              }),
            ]),
      ]).flat(),
    ];
    const ns = cluster.node('node-1').ns;
    const flags = ['--objects', objectsDir, '--hostname-override=node-1', '--cluster-cidr=10.244.0.0/16'];
    const converged = async () => (await cluster.exec(ns, process.execPath, [MAIN, 'diff', `--mode=${mode}`, ...flags])).code === 0;
    const agentArgs = [
      `--proxy-mode=${mode}`,
      ...flags,
      '--iptables-min-sync-period=0s',
      '--iptables-sync-period=3s',
      '--healthz-bind-address=127.0.0.1:0',
      '--metrics-bind-address=',
    ];
    await write(file, round(0));
    const a = await startAgentProcess(ns, agentArgs, converged, 60_000);
    running.push(a);
    const b = await startAgentProcess(ns, agentArgs, async () => true);
    running.push(b);
    for (let r = 1; r <= 12; r++) {
      await write(file, round(r));
      await new Promise((res) => setTimeout(res, 150 + (r % 3) * 200));
    }
    // Sync errors only (a many-CPU node's refused conntrack table size is logged at start, whatever the overlap).
    const errors = (o: string) => errorLines(o).filter((l) => !l.text.includes('conntrack setup:')).length;
    await waitFor('converged with both agents running', converged, 10_000, () => a.output().slice(-1500) + b.output().slice(-1500));
    console.log(`errors logged while both ran: ${errors(a.output())} + ${errors(b.output())}`);
    expect(await b.stop()).toBe(0);
    await write(file, round(13));
    await waitFor('converged with one agent left', converged, 10_000, () => a.output().slice(-2000));
    expect(await a.stop()).toBe(0);
    if (mode === 'nftables') await cluster.exec(ns, 'nft', ['delete', 'table', 'ip', 'kube-proxy']);
    else await cluster.exec(ns, process.execPath, [MAIN, '--cleanup']);
  });
});
