/**
 * The flow table (test/flow-cases.case.ts) through userspace mode: the real
 * agent process in --mode=userspace inside node-1's namespace, reading the
 * scenario's objects from a file, with real TCP and UDP traffic through its
 * listeners. What userspace mode does differently is a named skip or a
 * mapped expectation, never silence.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIptables } from '../iptables/restore.ts';
import { startAgentProcess, type AgentProcess } from './agent-runner.ts';
import { createCluster, type Cluster } from './netns/cluster.ts';
import type { PodServers } from './netns/servers.ts';
import { request, type RequestResult } from './netns/traffic.ts';
import { FLOW_NODES, NODE1_SECONDARY, nodes, SCENARIOS, TARGET_PORT, type FlowCase, type FlowScenario } from './flow-cases.case.ts';

/** Why a case cannot hold in userspace mode, or null when it runs. */
export function userspaceSkip(flow: FlowCase, scenario: FlowScenario): string | null {
  if (flow.skipKernel) return flow.skipKernel;
  if (scenario.family === 'IPv6') return 'userspace mode is single-stack (primary family), as upstream';
  if (scenario.flags && Object.keys(scenario.flags).length)
    return `${Object.keys(scenario.flags).join(', ')}: iptables-mode settings, not used by userspace mode`;
  if (/loadBalancerSourceRanges|source not in ranges/.test(flow.name))
    return 'userspace mode does not filter loadBalancerSourceRanges (neither did upstream)';
  if (flow.expect === 'NONE') return 'no rule expected: nothing to observe';
  if (flow.from === 'localhost') return 'localhost NodePorts are an iptables-mode feature (route_localnet)';
  return null;
}

let cluster: Cluster;
let servers: PodServers;

beforeAll(async () => {
  cluster = await createCluster({
    prefix: 'kptus',
    client: true,
    nodes: FLOW_NODES,
  });
  servers = await cluster.startPodServers({ tcp: [TARGET_PORT], udp: [TARGET_PORT] });
  await cluster.net.addAddress(cluster.node('node-1').ns, 'lo', `${NODE1_SECONDARY}/32`);
});
afterAll(async () => {
  await servers?.stop();
  await cluster?.destroy();
});

function send(flow: FlowCase): Promise<RequestResult[]> {
  const n = Array.isArray(flow.expect) ? flow.expect.length : 0;
  const count = flow.sticky ? 12 : n > 1 ? 6 * n : 3;
  const from = flow.from === 'client' ? cluster.client!.ns : flow.from === 'node' ? cluster.node('node-1').ns : cluster.pod(flow.from).ns;
  return request(cluster, from, {
    proto: flow.proto === 'UDP' ? 'udp' : 'tcp',
    ip: flow.to,
    port: flow.port,
    count,
    // Nothing comes back for a rejected or dropped flow: the window flows.e2e.test.ts gives a DROP (answers take ms).
    timeoutMs: flow.expect === 'REJECT' || flow.expect === 'DROP' ? 700 : 1500,
    ...(flow.from === 'node' ? { sourceIp: NODE1_SECONDARY } : {}),
  });
}

const scenario = SCENARIOS[0]!;
describe(`packet flows through userspace mode: ${scenario.name}`, () => {
  let agent: AgentProcess | undefined;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kpt-us-'));
    await writeFile(join(dir, 'objects.yaml'), [...nodes(), ...scenario.services(), ...scenario.slices()].map((o) => dump(o)).join('---\n'));
    const ipt = createIptables({ family: 'IPv4', backend: 'nft', runner: cluster.runnerIn(cluster.node('node-1').ns) });
    agent = await startAgentProcess(
      cluster.node('node-1').ns,
      [
        '--mode=userspace',
        '--objects',
        dir,
        '--hostname-override',
        'node-1',
        '--cluster-cidr',
        '10.244.0.0/16',
        '--iptables-min-sync-period',
        '0s',
        '--udp-timeout',
        '1s',
        '--healthz-bind-address',
        '127.0.0.1:10256',
        '--metrics-bind-address',
        '127.0.0.1:10249',
      ],
      async () => /-A KUBE-PORTALS-CONTAINER .*172\.30\.0\.21/.test(await ipt.save(['nat'])),
    );
  });
  afterAll(async () => {
    await agent?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  for (const flow of scenario.flows) {
    const skip = userspaceSkip(flow, scenario);
    it.skipIf(skip !== null)(`${flow.name}${skip ? ` [skipped: ${skip}]` : ''}`, async () => {
      const results = await send(flow);
      const summary = results.map((r) => (r.ok ? `${r.pod} from ${r.client}` : r.error)).join(', ');
      if (flow.expect === 'REJECT' || flow.expect === 'DROP') {
        // Userspace accepts the connection and closes it at once (or drops the datagram): the client gets nothing.
        expect(
          results.every((r) => !r.ok),
          summary,
        ).toBe(true);
        return;
      }
      if (!Array.isArray(flow.expect)) return;
      expect(
        results.every((r) => r.ok),
        summary,
      ).toBe(true);
      const hit = new Set(results.map((r) => (r.ok ? r.pod : '')));
      if (flow.sticky) expect(hit.size, summary).toBe(1);
      else expect([...hit].sort(), summary).toEqual([...flow.expect].sort());
      // Endpoints always see the node as the source: the proxy makes the connection.
      for (const r of results) if (r.ok) expect(r.client, summary).toMatch(/^(10\.244\.1\.1|192\.168\.50\.11):\d+$/);
    });
  }
});
