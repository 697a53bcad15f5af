/**
 * The flow table (test/flow-cases.case.ts) through the real kernel: for each
 * iptables backend, a two-node namespace cluster with pods and an outside
 * client; each scenario's rules are rendered exactly as `kube-proxy-ts render`
 * prints them, loaded into node-1 with the real iptables-restore, and real
 * TCP and UDP requests check which pods answer and what source they see.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIptables } from '../iptables/restore.ts';
import { toRestoreText } from '../iptables/restore-text.ts';
import type { IptablesBackend } from '../iptables/iptables.ts';
import { createCluster, type Cluster } from './netns/cluster.ts';
import type { PodServers } from './netns/servers.ts';
import { request, type RequestResult } from './netns/traffic.ts';
import { FLOW_NODES, NODE1_SECONDARY, NODE1_SECONDARY_6, SCENARIOS, TARGET_PORT, type FlowCase, type FlowScenario } from './flow-cases.case.ts';
import { desiredFor, sourceInfo } from './flow-runner.ts';

const RESET =
  '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n';

const secondary = (family: 'IPv4' | 'IPv6') => (family === 'IPv4' ? NODE1_SECONDARY : NODE1_SECONDARY_6);

async function send(cluster: Cluster, flow: FlowCase, family: 'IPv4' | 'IPv6'): Promise<RequestResult[]> {
  const n = Array.isArray(flow.expect) ? flow.expect.length : 0;
  const count = flow.sticky ? 12 : n > 1 ? 12 * n : n === 1 ? 4 : 2;
  const timeoutMs = flow.expect === 'DROP' ? 700 : 2000;
  const from =
    flow.from === 'client'
      ? cluster.client!.ns
      : flow.from === 'node' || flow.from === 'localhost'
        ? cluster.node('node-1').ns
        : cluster.pod(flow.from).ns;
  const sourceIp = flow.from === 'node' ? secondary(family) : undefined;
  return request(cluster, from, {
    proto: flow.proto === 'UDP' ? 'udp' : 'tcp',
    ip: flow.to,
    port: flow.port,
    count,
    timeoutMs,
    ...(sourceIp ? { sourceIp } : {}),
  });
}

function check(flow: FlowCase, results: readonly RequestResult[], family: 'IPv4' | 'IPv6'): void {
  const summary = results.map((r) => (r.ok ? `${r.pod} from ${r.client}` : r.error)).join(', ');
  if (flow.expect === 'REJECT') {
    expect(
      results.every((r) => !r.ok && r.error === 'refused'),
      summary,
    ).toBe(true);
    return;
  }
  if (flow.expect === 'DROP') {
    expect(
      results.every((r) => !r.ok && r.error === 'timeout'),
      summary,
    ).toBe(true);
    return;
  }
  if (flow.expect === 'NONE') {
    // Nothing listens on the untranslated address: the kernel answers for itself.
    expect(
      results.every((r) => !r.ok && r.error === 'refused'),
      summary,
    ).toBe(true);
    return;
  }
  expect(
    results.every((r) => r.ok),
    summary,
  ).toBe(true);
  const hit = new Set(results.map((r) => (r.ok ? r.pod : '')));
  if (flow.sticky) {
    expect(hit.size, summary).toBe(1);
    expect(flow.expect).toContain([...hit][0]);
  } else {
    expect([...hit].sort(), summary).toEqual([...flow.expect].sort());
  }
  if (flow.masq !== undefined) {
    const src = flow.from === 'node' ? secondary(family) : sourceInfo(flow.from, family).ip;
    for (const r of results) {
      if (!r.ok) continue;
      const seen = r.client.replace(/^\[?([^\]]*?)\]?:\d+$/, '$1');
      expect(seen !== src, `${r.pod} saw ${seen}, sent from ${src}`).toBe(flow.masq);
    }
  }
}

for (const backend of ['nft', 'legacy'] as IptablesBackend[]) {
  describe(`packet flows through the kernel (${backend} backend)`, () => {
    let cluster: Cluster;
    let servers: PodServers;

    beforeAll(async () => {
      cluster = await createCluster({
        prefix: `kptfl${backend.slice(0, 3)}`,
        client: true,
        ipv6: true,
        nodes: FLOW_NODES,
      });
      servers = await cluster.startPodServers({ tcp: [TARGET_PORT], udp: [TARGET_PORT] });
      await cluster.net.addAddress(cluster.node('node-1').ns, 'lo', `${NODE1_SECONDARY}/32`);
      await cluster.net.addAddress(cluster.node('node-1').ns, 'lo', `${NODE1_SECONDARY_6}/128`);
    });
    afterAll(async () => {
      await servers?.stop();
      await cluster?.destroy();
    });

    for (const scenario of SCENARIOS) {
      describe(scenario.name, () => {
        beforeAll(async () => load(cluster, backend, scenario));
        for (const flow of scenario.flows) {
          const family = scenario.family ?? 'IPv4';
          it.skipIf(flow.skipKernel !== undefined)(flow.name, async () => check(flow, await send(cluster, flow, family), family));
        }
      });
    }
  });
}

async function load(cluster: Cluster, backend: IptablesBackend, scenario: FlowScenario): Promise<void> {
  const node = cluster.node('node-1');
  for (const family of ['IPv4', 'IPv6'] as const) {
    await createIptables({ family, backend, runner: cluster.runnerIn(node.ns) }).restore(RESET, { noflush: false, counters: false });
  }
  const family = scenario.family ?? 'IPv4';
  const ipt = createIptables({ family, backend, runner: cluster.runnerIn(node.ns) });
  await cluster.exec(node.ns, 'conntrack', ['-F']).catch(() => undefined);
  await cluster.net.setSysctls(node.ns, { 'net.ipv4.conf.all.route_localnet': '0', ...scenario.sysctls });
  const desired = desiredFor(scenario);
  expect(desired.problems).toEqual([]);
  const render = desired.renders.find((r) => r.ruleset.family === family)!;
  await ipt.restore(toRestoreText(render.ruleset, { builtins: 'insert' }), { noflush: true, counters: false });
}
