/**
 * Userspace mode beyond the flow table, with the real agent process in
 * node-1's namespace and real traffic: large transfers intact in both
 * directions, half-close, a dead endpoint skipped by the retry, UDP replies
 * from the service address, endpoint and service changes while connections
 * are open, removal, metrics, an exhausted --proxy-port-range, and switching
 * modes in both directions without leftovers.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIptables } from '../iptables/restore.ts';
import type { Iptables } from '../iptables/iptables.ts';
import { startAgentProcess, waitFor, type AgentProcess } from './agent-runner.ts';
import { makeEndpointSlice, makeNode, makeService } from './builders.ts';
import { createCluster, type Cluster } from './netns/cluster.ts';
import type { PodServers } from './netns/servers.ts';
import { podsHit, request } from './netns/traffic.ts';

const STREAM_CLIENT = new URL('./netns/stream-client.ts', import.meta.url).pathname;
const POD = { 'pod-a': '10.244.1.2', 'pod-b': '10.244.1.3', 'pod-c': '10.244.2.2' } as const;
type PodName = keyof typeof POD;

let cluster: Cluster;
let servers: PodServers;
let dir: string;
let ipt: Iptables;
let node1: string;

beforeAll(async () => {
  cluster = await createCluster({
    prefix: 'kptus2',
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
      { name: 'node-2', podCIDR: '10.244.2.0/24', pods: [{ name: 'pod-c', ip: POD['pod-c'] }] },
    ],
  });
  servers = await cluster.startPodServers({ tcp: [8080], udp: [8080], echo: [9000] });
  node1 = cluster.node('node-1').ns;
  ipt = createIptables({ family: 'IPv4', backend: 'nft', runner: cluster.runnerIn(node1) });
  dir = await mkdtemp(join(tmpdir(), 'kpt-us2-'));
});
afterAll(async () => {
  await servers?.stop();
  await cluster?.destroy();
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface Objects {
  readonly webPods?: readonly (PodName | string)[];
  readonly webPort?: number;
  readonly withWeb?: boolean;
}
function objects(o: Objects = {}): unknown[] {
  const ip = (p: string) => (p in POD ? POD[p as PodName] : p);
  const webPods = o.webPods ?? ['pod-a', 'pod-b', 'pod-c'];
  const docs: unknown[] = [
    makeNode('node-1', { addresses: ['192.168.50.11'], podCIDR: '10.244.1.0/24' }),
    makeService('ns1', 'retry', { clusterIP: '172.30.0.11', ports: [{ name: 'http', port: 80, targetPort: 8080 }] }),
    // 10.244.1.99 does not exist (dial timeout), 10.244.1.1 is the node's bridge address with nothing on 8080 (refused).
    makeEndpointSlice('ns1', 'retry', 'retry-1', {
      endpoints: ['10.244.1.99', '10.244.1.1', POD['pod-c']].map((i) => ({ ip: i, nodeName: 'node-1' })),
      ports: [{ name: 'http', port: 8080 }],
    }),
  ];
  if (o.withWeb !== false) {
    docs.push(
      makeService('ns1', 'web', {
        type: 'NodePort',
        clusterIP: '172.30.0.10',
        externalIPs: ['203.0.113.10'],
        ports: [
          { name: 'http', port: o.webPort ?? 80, targetPort: 8080, nodePort: 30080 },
          { name: 'echo', port: 9000, targetPort: 9000, nodePort: 30900 },
          { name: 'dns', port: 53, targetPort: 8080, protocol: 'UDP', nodePort: 30053 },
        ],
      }),
      makeEndpointSlice('ns1', 'web', 'web-1', {
        endpoints: webPods.map((p) => ({ ip: ip(p), nodeName: p === 'pod-c' ? 'node-2' : 'node-1' })),
        ports: [
          { name: 'http', port: 8080 },
          { name: 'echo', port: 9000 },
          { name: 'dns', port: 8080, protocol: 'UDP' },
        ],
      }),
    );
  }
  return docs;
}
const write = (o: Objects = {}) =>
  writeFile(
    join(dir, 'objects.yaml'),
    objects(o)
      .map((d) => dump(d))
      .join('---\n'),
  );

async function stream(ns: string, spec: Record<string, unknown>): Promise<Record<string, unknown>> {
  const r = await cluster.exec(ns, process.execPath, [STREAM_CLIENT, JSON.stringify(spec)], { timeoutMs: 90_000 });
  return JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>;
}

/** A connection that stays open: resolves `opened` once connected, `result` when holdMs is over. */
function hold(ns: string, spec: Record<string, unknown>) {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, STREAM_CLIENT, JSON.stringify({ kind: 'hold', ...spec })], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  let onOpen: () => void = () => undefined;
  const opened = new Promise<void>((r) => (onOpen = r));
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.includes('open\n')) onOpen();
  });
  const result = new Promise<Record<string, unknown>>((resolve) =>
    child.on('exit', () => resolve(JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>)),
  );
  return { opened, result };
}

const agentArgs = (mode: string, extra: string[] = []) => [
  `--mode=${mode}`,
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
  ...extra,
];
const portalFor = (ip: string, port: number) =>
  new RegExp(`-A KUBE-PORTALS-CONTAINER .*-d ${ip.replace(/\./g, '\\.')}/32 .*--dport ${port} .*REDIRECT --to-ports (\\d+)`);
async function nat(): Promise<string> {
  return ipt.save(['nat']);
}
async function metricsText(): Promise<string> {
  const r = await cluster.exec(
    node1,
    process.execPath,
    ['-e', "fetch('http://127.0.0.1:10249/metrics').then(r=>r.text()).then(t=>process.stdout.write(t))"],
    { timeoutMs: 10_000 },
  );
  return r.stdout;
}

describe('userspace mode: streams, retries and changes', () => {
  let agent: AgentProcess;
  beforeAll(async () => {
    await write();
    agent = await startAgentProcess(node1, agentArgs('userspace', ['--udp-timeout', '1s']), async () =>
      portalFor('172.30.0.10', 9000).test(await nat()),
    );
  });
  afterAll(async () => {
    await agent?.stop();
  });

  it('carries 32 MiB to an echo pod and back intact (sha256), from a pod and from outside through the node port', async () => {
    for (const [ns, ip, port] of [
      [cluster.pod('pod-a').ns, '172.30.0.10', 9000],
      [cluster.client!.ns, '192.168.50.11', 30900],
    ] as const) {
      const r = await stream(ns, { kind: 'bulk', ip, port, bytes: 32 << 20 });
      expect(r.ok, JSON.stringify(r)).toBe(true);
      expect(r.receivedBytes).toBe(32 << 20);
      expect(r.received).toBe(r.sent);
      console.log(`32 MiB echo through the userspace proxy from ${ns}: ${r.ms} ms`);
    }
  });

  it('keeps half-close: a client that sends its request and FIN still gets the whole answer', async () => {
    for (const ns of [cluster.pod('pod-a').ns, cluster.client!.ns]) {
      const r = await stream(ns, { kind: 'half-close', ip: ns === cluster.client!.ns ? '203.0.113.10' : '172.30.0.10', port: 80 });
      expect(r.ok, JSON.stringify(r)).toBe(true);
      expect(String(r.reply)).toMatch(/"pod":"pod-[abc]"/);
    }
  });

  it('skips dead endpoints by retrying: every request reaches the live pod', async () => {
    const rs = await request(cluster, cluster.pod('pod-a').ns, { proto: 'tcp', ip: '172.30.0.11', port: 80, count: 9, timeoutMs: 5000 });
    expect(
      rs.every((r) => r.ok),
      JSON.stringify(rs),
    ).toBe(true);
    expect([...podsHit(rs).keys()]).toEqual(['pod-c']);
    const m = await metricsText();
    expect(m).toMatch(/kubeproxy_ts_userspace_dial_failures_total\{service="ns1\/retry:http"\} [1-9]/);
  });

  it('answers UDP from the service address (the client socket is connected to it) and spreads sessions', async () => {
    const rs = await request(cluster, cluster.pod('pod-a').ns, { proto: 'udp', ip: '172.30.0.10', port: 53, count: 12, timeoutMs: 1500 });
    expect(
      rs.every((r) => r.ok),
      JSON.stringify(rs),
    ).toBe(true);
    expect(podsHit(rs).size).toBeGreaterThan(1);
    const outside = await request(cluster, cluster.client!.ns, { proto: 'udp', ip: '192.168.50.11', port: 30053, count: 3, timeoutMs: 1500 });
    expect(
      outside.every((r) => r.ok),
      JSON.stringify(outside),
    ).toBe(true);
  });

  it('counts connections and bytes per service port', async () => {
    const m = await metricsText();
    expect(m).toMatch(/kubeproxy_ts_userspace_connections_total\{service="ns1\/web:echo",protocol="TCP"\} [1-9]/);
    const bytes = /kubeproxy_ts_userspace_bytes_total\{service="ns1\/web:echo",protocol="TCP",direction="to_endpoint"\} (\d+)/.exec(m);
    expect(Number(bytes?.[1])).toBeGreaterThanOrEqual(2 * (32 << 20));
    expect(m).toMatch(/kubeproxy_ts_userspace_connections_total\{service="ns1\/web:dns",protocol="UDP"\} [1-9]/);
    expect(m).toMatch(/kubeproxy_sync_proxy_rules_last_timestamp_seconds\{ip_family="IPv4"\}/);
  });

  it('new connections follow an endpoint change at once; an open connection is left alone', async () => {
    const held = hold(cluster.pod('pod-b').ns, { ip: '172.30.0.10', port: 9000, holdMs: 3000 });
    await held.opened;
    await write({ webPods: ['pod-c'] });
    await waitFor('userspace: new connections to reach only pod-c after an endpoint change', async () => {
      const rs = await request(cluster, cluster.pod('pod-a').ns, { proto: 'tcp', ip: '172.30.0.10', port: 80, count: 6 });
      return rs.every((r) => r.ok && r.pod === 'pod-c');
    });
    const r = await held.result;
    expect(r.ok, JSON.stringify(r)).toBe(true);
  });

  it('a changed service port moves to a new listener; the old port stops answering', async () => {
    const before = portalFor('172.30.0.10', 80).exec(await nat())?.[1];
    expect(before).toBeDefined();
    await write({ webPods: ['pod-c'], webPort: 81 });
    await waitFor('the portal for port 81', async () => portalFor('172.30.0.10', 81).test(await nat()));
    const text = await nat();
    expect(portalFor('172.30.0.10', 80).test(text)).toBe(false);
    expect(portalFor('172.30.0.10', 81).exec(text)?.[1]).not.toBe(before);
    const rs = await request(cluster, cluster.pod('pod-a').ns, { proto: 'tcp', ip: '172.30.0.10', port: 81, count: 3 });
    expect(
      rs.every((r) => r.ok && r.pod === 'pod-c'),
      JSON.stringify(rs),
    ).toBe(true);
    const old = await request(cluster, cluster.pod('pod-a').ns, { proto: 'tcp', ip: '172.30.0.10', port: 80, count: 1, timeoutMs: 1000 });
    expect(old[0]!.ok).toBe(false);
  });

  it('a removed service closes its listeners and removes its rules', async () => {
    const text = await nat();
    const ports = [...text.matchAll(/ns1\/web:\S+ .*--to-ports (\d+)/g)].map((m) => m[1]!);
    expect(ports.length).toBeGreaterThan(0);
    await write({ withWeb: false });
    await waitFor('the web portals to go', async () => !(await nat()).includes('ns1/web:'));
    const ss = await cluster.exec(node1, 'ss', ['-Hltun']);
    for (const p of new Set(ports)) expect(ss.stdout).not.toMatch(new RegExp(`:${p}\\s`));
    expect((await nat()).includes('ns1/retry:http')).toBe(true);
  });
});

describe('userspace mode: --proxy-port-range', () => {
  it('an exhausted range is an error for the service ports that do not fit, the others work', async () => {
    await write();
    // The previous agent's rules are still there (SIGTERM leaves them): ready means the portal points into the range.
    const inRange = async () => {
      const ports = [...(await nat()).matchAll(/--to-ports (\d+)/g)].map((m) => Number(m[1]));
      return ports.length > 0 && ports.every((p) => p >= 40000 && p <= 40002);
    };
    const agent = await startAgentProcess(node1, agentArgs('userspace', ['--proxy-port-range', '40000-40002']), inRange);
    try {
      await waitFor('a log line about the exhausted range', async () => /no free port left in --proxy-port-range 40000-40002/.test(agent.output()));
      const text = await nat();
      const used = [...text.matchAll(/--to-ports (\d+)/g)].map((m) => Number(m[1]));
      expect(used.length).toBeGreaterThan(0);
      for (const p of used) expect(p >= 40000 && p <= 40002, `proxy port ${p}`).toBe(true);
      expect(agent.child.exitCode).toBe(null);
      const rs = await request(cluster, cluster.pod('pod-a').ns, { proto: 'tcp', ip: '172.30.0.11', port: 80, count: 2, timeoutMs: 5000 });
      expect(
        rs.every((r) => r.ok),
        JSON.stringify(rs),
      ).toBe(true);
    } finally {
      await agent.stop();
    }
  });
});

describe('userspace mode: restarted after kill -9', () => {
  it("a UDP client that keeps sending from one source port is answered again: the old process's conntrack entries are deleted", async () => {
    await write();
    const dnsPortal = (t: string) => /-A KUBE-PORTALS-CONTAINER .*-d 172\.30\.0\.10\/32 .*-p udp .*--dport 53 .*--to-ports (\d+)/.exec(t)?.[1];
    const ask = async () =>
      (await request(cluster, cluster.pod('pod-a').ns, { proto: 'udp', ip: '172.30.0.10', port: 53, sourcePort: 40_555, timeoutMs: 300 }))[0]!;
    // Ready once the portal points at this agent's listener (an earlier test's agent left its rules: SIGTERM keeps them).
    const left = dnsPortal(await nat());
    let agent = await startAgentProcess(node1, agentArgs('userspace'), async () => ![undefined, left].includes(dnsPortal(await nat())));
    const before = dnsPortal(await nat());
    try {
      expect((await ask()).ok).toBe(true);
      agent.child.kill('SIGKILL');
      await agent.stop();
      // The client keeps sending (its conntrack entry, REDIRECTed to the dead listener, stays alive) while the agent restarts.
      let sending = true;
      const seen: string[] = [];
      const client = (async () => {
        for (let i = 0; sending && i < 200; i++) {
          const r = await ask();
          seen.push(r.ok ? 'ok' : r.error);
          await new Promise((res) => setTimeout(res, 100));
        }
      })();
      // Until the datagrams meet the dead listener (refused), the old conntrack entry still in use.
      await waitFor(
        'the UDP client refused while the agent is down',
        async () => seen.includes('refused'),
        5000,
        () => seen.join(' '),
      );
      agent = await startAgentProcess(node1, agentArgs('userspace'), async () => {
        const now = dnsPortal(await nat());
        return now !== undefined && now !== before;
      });
      const answered = await waitFor('the UDP client to be answered after the restart', async () => seen.at(-1) === 'ok', 8000).catch(() => -1);
      sending = false;
      await client;
      expect(answered, `results: ${seen.join(' ')}\n${agent.output().slice(-2000)}`).toBeGreaterThanOrEqual(0);
      expect(seen).toContain('refused');
    } finally {
      await agent.stop();
    }
  }, 60_000);
});

describe('switching modes by restarting the agent', () => {
  it('iptables -> userspace -> iptables leaves no rule of the old mode behind, and traffic works each time', async () => {
    await write({ webPods: ['pod-b', 'pod-c'] });
    const works = async () => {
      const rs = await request(cluster, cluster.pod('pod-a').ns, { proto: 'tcp', ip: '172.30.0.10', port: 80, count: 20, timeoutMs: 5000 });
      if (rs.every((r) => r.ok) && podsHit(rs).size === 2) return true;
      console.log(`mode switch: traffic check failed: ${JSON.stringify(rs)}`);
      return false;
    };
    const iptablesRules = (t: string) => /KUBE-SERVICES|KUBE-SVC-|KUBE-SEP-|KUBE-PROXY-CANARY/.test(t);
    const userspaceRules = (t: string) => /KUBE-PORTALS-|KUBE-NODEPORT-(HOST|CONTAINER|NON-LOCAL)/.test(t);
    const all = async () => ipt.save(['nat', 'filter']);

    let agent = await startAgentProcess(node1, agentArgs('iptables'), async () => (await nat()).includes('-A KUBE-SERVICES -d 172.30.0.10/32'));
    expect(await works()).toBe(true);
    await agent.stop();

    agent = await startAgentProcess(node1, agentArgs('userspace'), async () => portalFor('172.30.0.10', 80).test(await nat()));
    let text = await all();
    expect(iptablesRules(text), text).toBe(false);
    expect(await works()).toBe(true);
    await agent.stop();

    agent = await startAgentProcess(node1, agentArgs('iptables'), async () => (await nat()).includes('-A KUBE-SERVICES -d 172.30.0.10/32'));
    text = await all();
    expect(userspaceRules(text), text).toBe(false);
    expect(await works()).toBe(true);
    await agent.stop();
  });
});
