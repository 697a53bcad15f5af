/**
 * Sending a flow case's requests through a namespace cluster whose node-1 runs
 * a scenario's nftables table, and checking the answers (which pods answer,
 * what source they see, rejected or dropped): shared by the nft-flows e2e
 * files (generation A, the default, and generation B).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Nft } from '../nftables/nft.ts';
import type { NftRenderOptions } from '../nftables/render.ts';
import { createCluster, type Cluster } from './netns/cluster.ts';
import type { PodServers } from './netns/servers.ts';
import { request, type RequestResult } from './netns/traffic.ts';
import { FLOW_NODES, NODE1_SECONDARY, NODE1_SECONDARY_6, TARGET_PORT } from './flow-cases.case.ts';
import { sourceInfo } from './flow-runner.ts';
import { nftFlowScenarios, type NftFlowCase, type NftScenario } from './nft-flow-cases.case.ts';
import { nftDesiredFor } from './nft-flow-runner.ts';

const secondary = (family: 'IPv4' | 'IPv6') => (family === 'IPv4' ? NODE1_SECONDARY : NODE1_SECONDARY_6);

async function send(cluster: Cluster, flow: NftFlowCase, family: 'IPv4' | 'IPv6'): Promise<RequestResult[]> {
  const n = Array.isArray(flow.expect) ? flow.expect.length : 0;
  const count = flow.sticky ? 12 : n > 1 ? 12 * n : n === 1 ? 4 : 2;
  const timeoutMs = flow.expect === 'DROP' ? 700 : 2000;
  const from =
    flow.from === 'client'
      ? cluster.client!.ns
      : flow.from === 'node' || flow.from === 'localhost'
        ? cluster.node('node-1').ns
        : cluster.pod(flow.from).ns;
  // Node traffic leaves from a secondary address, so masquerading (to the primary one) is visible.
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

function check(flow: NftFlowCase, results: readonly RequestResult[], family: 'IPv4' | 'IPv6'): void {
  const summary = results.map((r) => (r.ok ? `${r.pod} from ${r.client}` : r.error)).join(', ');
  if (flow.expect === 'REJECT' || flow.expect === 'NONE') {
    // REJECT: port unreachable from kube-proxy's rule; NONE: nothing listens on the untranslated address.
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

/** Loads the scenario's table into node-1 (after deleting the previous one's), with render options `over` on top. */
async function load(cluster: Cluster, nft: Nft, scenario: NftScenario, over: Partial<NftRenderOptions> = {}): Promise<void> {
  const node = cluster.node('node-1');
  await nft.deleteTable('ip');
  await nft.deleteTable('ip6');
  await cluster.exec(node.ns, 'conntrack', ['-F']).catch(() => undefined);
  // nftables mode never sets route_localnet (no localhost NodePorts).
  await cluster.net.setSysctls(node.ns, { 'net.ipv4.conf.all.route_localnet': '0' });
  const desired = nftDesiredFor(scenario, over);
  expect(desired.problems).toEqual([]);
  await nft.run(desired.text);
}

/**
 * Every nftables flow scenario through the kernel (see nft-flows.e2e.test.ts), its namespaces named from `prefix`,
 * with render options `over` on top of each scenario's (e.g. `generation`).
 */
export function describeKernelFlows(title: string, prefix: string, over: Partial<NftRenderOptions> = {}): void {
  describe(title, () => {
    let cluster: Cluster;
    let servers: PodServers;
    let nft: Nft;

    beforeAll(async () => {
      cluster = await createCluster({
        prefix,
        client: true,
        ipv6: true,
        nodes: FLOW_NODES,
      });
      servers = await cluster.startPodServers({ tcp: [TARGET_PORT], udp: [TARGET_PORT] });
      await cluster.net.addAddress(cluster.node('node-1').ns, 'lo', `${NODE1_SECONDARY}/32`);
      await cluster.net.addAddress(cluster.node('node-1').ns, 'lo', `${NODE1_SECONDARY_6}/128`);
      nft = new Nft(cluster.runnerIn(cluster.node('node-1').ns));
    });
    afterAll(async () => {
      await servers?.stop();
      await cluster?.destroy();
    });

    for (const scenario of nftFlowScenarios()) {
      describe(scenario.name, () => {
        beforeAll(async () => load(cluster, nft, scenario, over));
        const family = scenario.family ?? 'IPv4';
        for (const flow of scenario.flows) {
          it.skipIf(flow.skipKernel !== undefined)(flow.name, async () => check(flow, await send(cluster, flow, family), family));
        }
      });
    }
  });
}
