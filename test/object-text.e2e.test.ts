/**
 * "One object must never take down the others": Services whose namespace,
 * name or port name hold quotes, blanks, tabs, backslashes, `|`, a leading
 * `-`, hundreds of bytes or multi-byte characters (possible with --objects or
 * an API server that does not validate) sit next to a plain service. The real
 * agent process programs them all through the real iptables-restore (nft and
 * legacy), the plain service and the odd ones answer real traffic, names that
 * no rule can carry (newline, NUL) are skipped with a log line naming them,
 * later edits are still programmed, and `diff` reports the node converged.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kernelComment } from '../iptables/comment.ts';
import { parseSave } from '../iptables/parse-save.ts';
import { createIptables } from '../iptables/restore.ts';
import { findOption, parseRuleWords, tokenizeRule } from '../iptables/rule-words.ts';
import { getChain } from '../iptables/ruleset.ts';
import { toRestoreText } from '../iptables/restore-text.ts';
import { renderPortals } from '../userspace/portal-rules.ts';
import { servicePort } from './domain.ts';
import type { IptablesBackend } from '../iptables/iptables.ts';
import { diffCommand } from '../src/cmd/diff.ts';
import { silentLogger } from '../proxier/log.ts';
import { startAgentProcess, waitFor, type AgentProcess } from './agent-runner.ts';
import { makeEndpointSlice, makeNode, makeService } from './builders.ts';
import { createCluster, type Cluster } from './netns/cluster.ts';
import type { PodServers } from './netns/servers.ts';
import { podsHit, request } from './netns/traffic.ts';
import { logLines } from './log-lines.ts';

const POD_A = '10.244.1.2';
const POD_B = '10.244.1.3';
const POD_C = '10.244.2.2';
const RESET =
  '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n';

/** [namespace, name, port name]: programmed, their text escaped and cut as iptables-save prints it. */
const ODD: readonly (readonly [string, string, string])[] = [
  ['ns1', 'quote"d', 'p80'],
  ['ns1', 'with space', 'p80'],
  ['ns1', 'with\ttab', 'p80'],
  ['ns1', "back\\slash'n", 'p80'],
  ['team a', 'svc', 'p "80'],
  ['-ns', 'dash', 'p80'],
  ['ns1', 'x'.repeat(300), 'p80'],
  ['ns1', '日本'.repeat(60), 'p80'],
  ['ns1', 'emoji\u{1F600}lone\ud800', 'p80'],
];
/** Names no restore input can carry: skipped, each named in a log line. */
const UNCARRIABLE: readonly (readonly [string, string, string])[] = [
  ['ns1', 'new\nline', 'p80'],
  ['ns1', 'nul\u0000byte', 'p80'],
  ['ns1', 'portname', 'p\n80'],
];

function oddService(i: number, ns: string, name: string, port: string): unknown[] {
  return [
    makeService(ns, name, {
      clusterIP: `172.30.1.${i + 1}`,
      type: 'LoadBalancer',
      ports: [{ name: port, port: 80, targetPort: 8080, nodePort: 30100 + i }],
      externalIPs: [`192.168.99.${i + 1}`],
      loadBalancerIP: `1.2.3.${i + 1}`,
      loadBalancerSourceRanges: ['192.168.0.0/16'],
      externalTrafficPolicy: 'Local',
      healthCheckNodePort: 32100 + i,
      sessionAffinity: 'ClientIP',
    }),
    makeEndpointSlice(ns, name, `s${i}`, { endpoints: [{ ip: POD_A, nodeName: 'node-1' }], ports: [{ name: port, port: 8080 }] }),
  ];
}

function objects(extra: unknown[] = []): unknown[] {
  return [
    makeNode('node-1', { addresses: ['192.168.50.11'], podCIDR: '10.244.1.0/24' }),
    makeService('ns1', 'web', { clusterIP: '172.30.0.10', ports: [{ name: 'p80', port: 80, targetPort: 8080 }] }),
    makeEndpointSlice('ns1', 'web', 'web-1', {
      endpoints: [
        { ip: POD_A, nodeName: 'node-1' },
        { ip: POD_B, nodeName: 'node-1' },
      ],
      ports: [{ name: 'p80', port: 8080 }],
    }),
    ...ODD.flatMap(([ns, name, port], i) => oddService(i, ns, name, port)),
    ...UNCARRIABLE.flatMap(([ns, name, port], i) => oddService(50 + i, ns, name, port)),
    // A `|` in the name: no endpoints (REJECT), and eTP Local with only a remote endpoint (DROP from outside).
    makeService('ns1', 'pi|pe', { clusterIP: '172.30.2.1', type: 'NodePort', ports: [{ name: 'p80', port: 80, nodePort: 30200 }] }),
    makeService('ns1', 'lo|cal', {
      clusterIP: '172.30.2.2',
      type: 'NodePort',
      externalTrafficPolicy: 'Local',
      ports: [{ name: 'p80', port: 80, nodePort: 30201 }],
    }),
    makeEndpointSlice('ns1', 'lo|cal', 'lc', { endpoints: [{ ip: POD_C, nodeName: 'node-2' }], ports: [{ name: 'p80', port: 8080 }] }),
    ...extra,
  ];
}

let cluster: Cluster;
let servers: PodServers;
let dir: string;
const write = (docs: unknown[]) => writeFile(join(dir, 'cluster.json'), JSON.stringify({ apiVersion: 'v1', kind: 'List', items: docs }));

async function hits(ip: string, count = 4): Promise<string> {
  const rs = await request(cluster, cluster.client!.ns, { proto: 'tcp', ip, port: 80, count, timeoutMs: 800 });
  if (rs.every((r) => !r.ok && r.error === 'refused')) return 'refused';
  return [...podsHit(rs).keys()].sort().join(',') + (rs.every((r) => r.ok) ? '' : ' (some failed)');
}

beforeAll(async () => {
  cluster = await createCluster({
    prefix: 'kptodd',
    client: true,
    nodes: [
      {
        name: 'node-1',
        podCIDR: '10.244.1.0/24',
        pods: [
          { name: 'pod-a', ip: POD_A },
          { name: 'pod-b', ip: POD_B },
        ],
      },
      { name: 'node-2', podCIDR: '10.244.2.0/24', pods: [{ name: 'pod-c', ip: POD_C }] },
    ],
  });
  servers = await cluster.startPodServers({ tcp: [8080] });
  dir = await mkdtemp(join(tmpdir(), 'kpt-odd-'));
});

afterAll(async () => {
  await servers?.stop();
  await cluster?.destroy();
  if (dir) await rm(dir, { recursive: true, force: true });
});

for (const backend of ['nft', 'legacy'] as IptablesBackend[]) {
  describe(`odd object names with the ${backend} backend`, () => {
    let agent: AgentProcess | undefined;
    const node = () => cluster.node('node-1').ns;
    const flags = () => ['--objects', dir, '--hostname-override', 'node-1', '--cluster-cidr', '10.244.0.0/16', `--iptables-backend=${backend}`];
    const io = (out: string[]) => ({
      stdout: (t: string) => void out.push(t),
      stderr: (t: string) => void out.push(t),
      makeLogger: () => silentLogger(),
      runner: cluster.runnerIn(node()),
      osHostname: () => 'node-1',
    });

    beforeAll(async () => {
      for (const b of ['nft', 'legacy'] as const) {
        for (const family of ['IPv4', 'IPv6'] as const)
          await createIptables({ family, backend: b, runner: cluster.runnerIn(node()) }).restore(RESET, { noflush: false, counters: false });
      }
      await write(objects());
      agent = await startAgentProcess(
        node(),
        [...flags(), '--iptables-min-sync-period', '0s', '--healthz-bind-address', '127.0.0.1:10256', '--metrics-bind-address', '127.0.0.1:10249'],
        async () => (await hits('172.30.0.10', 2)).startsWith('pod-'),
        30_000,
      ).catch((e: Error) => {
        throw new Error(`the plain service never worked next to the odd ones: ${e.message}`);
      });
    });
    afterAll(async () => {
      expect(await agent?.stop()).toBe(0);
    });

    it('programs the plain service and every odd one; traffic reaches their endpoints', async () => {
      await waitFor('plain service', async () => (await hits('172.30.0.10', 8)) === 'pod-a,pod-b');
      for (let i = 0; i < ODD.length; i++) expect(await hits(`172.30.1.${i + 1}`, 1), `${JSON.stringify(ODD[i])}`).toBe('pod-a');
      expect(await hits('172.30.2.1', 1)).toBe('refused');
      expect(agent!.output()).not.toMatch(/Failed to execute iptables-restore/);
    });

    it('skips names no rule can carry, naming each object in a log line', () => {
      const lines = logLines(agent!.output()).map((l) => ({ msg: l.msg, ...l.fields }));
      for (const [ns, name, port] of UNCARRIABLE) {
        const want = port === 'p80' ? 'metadata.name' : 'spec.ports[0].name';
        expect(lines, `${ns}/${name}`).toContainEqual(
          expect.objectContaining({ object: `Service ${ns}/${name}`, field: want, msg: expect.stringMatching(/^skipped: .*control character/s) }),
        );
      }
    });

    it('diff reports the node converged (comments compared as the kernel keeps them)', async () => {
      const out: string[] = [];
      const code = await diffCommand(flags(), io(out));
      expect(out.join(''), out.join('')).toContain('IPv4: converged');
      expect(code).toBe(0);
    });

    it("userspace mode's portal rules carry the same names into the kernel", async () => {
      const ipt = createIptables({ family: 'IPv4', backend, runner: cluster.runnerIn(node()) });
      const targets = ODD.map(([namespace, name, portName], i) => ({
        service: servicePort({
          key: `${namespace}/${name}:${portName}`,
          namespace,
          name,
          portName,
          clusterIP: `172.31.0.${i + 1}`,
          nodePort: 31000 + i,
          externalIPs: [`192.168.98.${i + 1}`],
        }),
        internalPort: 36000 + i,
        externalPort: 36000 + i,
        nodePortHeld: true,
      }));
      await ipt.restore(
        toRestoreText(renderPortals(targets, { family: 'IPv4', hostIP: '192.168.50.11', bindAddress: '0.0.0.0' }), { builtins: 'skip' }),
        { noflush: true, counters: false },
      );
      const portals = getChain(parseSave(await ipt.save(['nat']), 'IPv4'), 'nat', 'KUBE-PORTALS-CONTAINER')!.rules;
      const comments = new Set(portals.map((r) => findOption(parseRuleWords(tokenizeRule(r)), 'comment', '--comment')?.values[0]));
      for (const t of targets) expect(comments.has(kernelComment(t.service.key)), t.service.key).toBe(true);
      await ipt.restore(
        '*nat\n:KUBE-PORTALS-CONTAINER - [0:0]\n:KUBE-PORTALS-HOST - [0:0]\n:KUBE-NODEPORT-CONTAINER - [0:0]\n:KUBE-NODEPORT-HOST - [0:0]\n-X KUBE-PORTALS-CONTAINER\n-X KUBE-PORTALS-HOST\n-X KUBE-NODEPORT-CONTAINER\n-X KUBE-NODEPORT-HOST\nCOMMIT\n*filter\n:KUBE-NODEPORT-NON-LOCAL - [0:0]\n-X KUBE-NODEPORT-NON-LOCAL\nCOMMIT\n',
        { noflush: true, counters: false },
      );
    });

    it('keeps programming later changes next to the odd objects', async () => {
      const later = [
        makeService('ns1', 'later', { clusterIP: '172.30.0.11', ports: [{ name: 'p80', port: 80, targetPort: 8080 }] }),
        makeEndpointSlice('ns1', 'later', 'later-1', { endpoints: [{ ip: POD_B, nodeName: 'node-1' }], ports: [{ name: 'p80', port: 8080 }] }),
      ];
      await write(objects(later));
      await waitFor(
        'a service added later',
        async () => (await hits('172.30.0.11', 2)) === 'pod-b',
        15_000,
        () => agent!.output().slice(-2000),
      );
      expect(await diffCommand(flags(), io([]))).toBe(0);
      expect(agent!.output()).not.toMatch(/Failed to execute iptables-restore/);
    });
  });
}
