/**
 * One run of the sandbox story in one proxy mode, steps 1-8: build the
 * namespaces, start kube-proxy-ts on both nodes, show the services, the
 * rules (or listeners), real requests, what operators see of them (top, the
 * traffic metrics, /debug/services), an endpoint change followed by the
 * traffic, and the removal of everything. Returns the problems seen (none
 * when every check held); throws when the run cannot go on.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCluster } from '../../test/netns/cluster.ts';
import { startAgent, waitProgrammed, type Mode } from './agents.ts';
import { showListeners, showNftRules, showRules } from './inspect.ts';
import { showObservability } from './observe.ts';
import { CHANGE, copyObjects, DNS, NODES, nodeOfPod, OBJECTS_SOURCE, POD_PORTS, replaceEndpoint, serviceRows, SERVING_PODS, WEB } from './objects.ts';
import { OUTSIDE_TO_NODEPORT, POD_TO_DNS, POD_TO_WEB, problems, send, waitFollowed, type Path } from './requests.ts';
import { teardown, type Resources } from './resources.ts';
import { hitLines, seconds, type Story } from './story.ts';

export const STEPS = 8;

export interface RunContext {
  readonly story: Story;
  readonly signal: AbortSignal;
}

export async function runMode(mode: Mode, res: Resources, ctx: RunContext): Promise<string[]> {
  const { story, signal } = ctx;
  const found: string[] = [];
  const check = (what: string, list: string[]): void => {
    for (const p of list) story.warn(`${what}: ${p}`);
    found.push(...list.map((p) => `${what}: ${p}`));
  };

  story.step('Building the sandbox: a two-node cluster made of network namespaces');
  let t0 = Date.now();
  res.cluster = await createCluster({ prefix: res.prefix, nodes: NODES, client: true });
  const cluster = res.cluster;
  signal.throwIfAborted();
  await cluster.startPodServers({ ...POD_PORTS, pods: [...SERVING_PODS] });
  story.table(
    ['NAMESPACE', 'WHAT', 'ADDRESSES'],
    [
      ...cluster.nodes.map((n) => [
        n.ns,
        n.name,
        `${n.ip}; bridge ${n.bridge} ${n.gateway}/24 for pods: ${n.pods.map((p) => `${p.name} ${p.ip}`).join(', ')}`,
      ]),
      [cluster.client!.ns, 'outside client', `${cluster.client!.ip}; routes ${cluster.client!.routes[0]} (service IPs) via node-1`],
      [cluster.underlay.ns, 'the network', `bridge ${cluster.underlay.bridge} ${cluster.underlay.gateway}/24 between the nodes and the client`],
    ],
  );
  story.line(`+ one namespace per pod (${cluster.pods[0]!.ns}, ...); each node routes the other's pod subnet to it.`);
  story.line(`pod-a..pod-d answer TCP ${POD_PORTS.tcp[0]} and UDP ${POD_PORTS.udp[0]} with their own name; toolbox only sends requests.`);
  story.ok(`${cluster.namespaces.length} namespaces built in ${seconds(Date.now() - t0)}`);
  signal.throwIfAborted();

  story.step(`Starting kube-proxy-ts on node-1 and node-2 in ${mode} mode (standalone: objects from a file, no API server)`);
  res.dir = await mkdtemp(join(tmpdir(), `${res.prefix}-`));
  const file = await copyObjects(res.dir);
  for (const n of NODES) res.agents.push(startAgent(cluster, n.name, mode, res.dir));
  story.command(`ip netns exec ${res.agents[0]!.ns} ${res.agents[0]!.argv.join(' ')}`);
  story.line(
    `(the same on ${res.agents[1]!.ns} with --hostname-override node-2; ${res.dir} holds a copy of ${OBJECTS_SOURCE.replace(/.*\/examples\//, 'examples/')})`,
  );
  const addresses = [WEB.clusterIP, DNS.clusterIP];
  const ready = await Promise.all(res.agents.map((a) => waitProgrammed(cluster, a, addresses, signal)));
  for (const [i, a] of res.agents.entries())
    story.ok(
      `${a.node}: ${mode === 'userspace' ? 'listeners and portal rules' : 'rules'} for every service in place ${seconds(ready[i]!)} after start`,
    );

  story.step('The services (what an API server would hold; here the file both agents watch)');
  story.table(['NAME', 'TYPE', 'CLUSTER IP', 'PORTS', 'ENDPOINTS (pod@node)'], await serviceRows(file));
  signal.throwIfAborted();

  if (mode === 'iptables') {
    story.step('The rules kube-proxy-ts wrote on node-1 for web');
    found.push(...(await showRules(story, cluster, res.agents[0]!, res.dir)));
  } else if (mode === 'nftables') {
    story.step('The nftables table kube-proxy-ts wrote on node-1 for web');
    found.push(...(await showNftRules(story, cluster, res.agents[0]!, res.dir)));
  } else {
    story.step('What kube-proxy-ts opened on node-1: a proxy per service port, and portal rules sending traffic to it');
    await showListeners(story, cluster, res.agents[0]!);
  }
  signal.throwIfAborted();

  story.step('Real requests (each pod server answers with its name)');
  const endpoints = { web: ['pod-a', 'pod-b', 'pod-c'], dns: ['pod-b', 'pod-d'] };
  const batches: [Path, number, readonly string[]][] = [
    [POD_TO_WEB, 30, endpoints.web],
    [OUTSIDE_TO_NODEPORT, 30, endpoints.web],
    [POD_TO_DNS, 20, endpoints.dns],
  ];
  const before = found.length;
  const nodesSeen = new Set<string>();
  for (const [path, count, expect] of batches) {
    const o = await send(cluster, path, count);
    story.line(`${count} x ${path.title}:`);
    story.output(hitLines(o.hits, nodeOfPod, { expect, failed: o.failed }));
    for (const pod of o.hits.keys()) nodesSeen.add(nodeOfPod(pod));
    check(path.title.split(' ').slice(0, 6).join(' '), problems(o, expect));
    signal.throwIfAborted();
  }
  if (found.length === before && nodesSeen.size === NODES.length)
    story.ok(`every request answered by an endpoint of its service, pods on ${[...nodesSeen].sort().join(' and ')} alike`);

  story.step(
    mode === 'iptables'
      ? 'What operators see: live traffic per endpoint (kube-proxy-ts top, kubeproxy_ts_endpoint_* metrics) and /debug/services'
      : mode === 'nftables'
        ? "What operators see: live traffic per endpoint from each endpoint chain's named counter (top, kubeproxy_ts_endpoint_* metrics) and /debug/services"
        : 'What operators see: /debug/services on the metrics server',
  );
  check('observability', await showObservability(story, cluster, res.agents[0]!, mode, signal));
  signal.throwIfAborted();

  story.step(`A change: ${CHANGE.remove} is replaced by ${CHANGE.add} (node-2) in web's EndpointSlice`);
  t0 = Date.now();
  const now = await replaceEndpoint(file, CHANGE);
  story.line(`edited ${file}: web's endpoints are now ${now.map((p) => `${p}@${nodeOfPod(p)}`).join(' ')}`);
  const paths = [POD_TO_WEB, OUTSIDE_TO_NODEPORT];
  const took = await Promise.all(paths.map((p) => waitFollowed(cluster, p, CHANGE, t0, signal)));
  for (const [i, p] of paths.entries()) story.ok(`${p.via} followed the change ${seconds(took[i]!)} after the edit (file watch, then the next sync)`);
  const afterChange = found.length;
  for (const path of paths) {
    const o = await send(cluster, path, 30);
    story.line(`30 x ${path.title}:`);
    story.output(hitLines(o.hits, nodeOfPod, { expect: [CHANGE.remove, ...now].sort(), failed: o.failed }));
    check(`after the change, ${path.via}`, problems(o, now));
  }
  if (found.length === afterChange) story.ok(`${CHANGE.remove} gets no more requests, ${CHANGE.add} gets its share, on both paths`);

  story.step('Cleaning up');
  const report = await teardown(res);
  story.ok(`stopped kube-proxy-ts on ${report.agents.join(' and ')}; deleted ${report.namespaces} namespaces (${res.prefix}-*) and ${report.dir}`);
  if (report.left.length > 0) check('cleanup', [`namespaces left: ${report.left.join(', ')}`]);
  return found;
}
