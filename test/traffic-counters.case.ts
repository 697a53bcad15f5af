/**
 * What the two traffic-counter end-to-end tests (iptables and nftables mode)
 * share: one node with three pods answering TCP 8080 and an outside client,
 * the agent's metrics server read from inside the node's namespace (it
 * listens on the namespace's loopback), as `kubectl exec` into its pod would,
 * and the check that its counts follow real connections.
 */
import { expect } from 'vitest';
import { waitFor } from './agent-runner.ts';
import type { ClusterSpec } from './netns/address-plan.ts';
import type { Cluster } from './netns/cluster.ts';
import { podsHit, request } from './netns/traffic.ts';

export const METRICS = '127.0.0.1:10249';

/** node-1 with pod-a, pod-b, pod-c (10.244.1.2-4) and a client, under `prefix`. */
export const trafficCluster = (prefix: string): ClusterSpec => ({
  prefix,
  client: true,
  nodes: [
    {
      name: 'node-1',
      podCIDR: '10.244.1.0/24',
      pods: [
        { name: 'pod-a', ip: '10.244.1.2' },
        { name: 'pod-b', ip: '10.244.1.3' },
        { name: 'pod-c', ip: '10.244.1.4' },
      ],
    },
  ],
});

/** GET on node-1's metrics server. */
export async function metricsGet(cluster: Cluster, path: string): Promise<{ status: number; body: string }> {
  const script = `fetch('http://${METRICS}${path}').then(async (r) => process.stdout.write(r.status + '\\n' + (await r.text())))`;
  const r = await cluster.exec(cluster.node('node-1').ns, process.execPath, ['-e', script], { timeoutMs: 10_000 });
  if (r.code !== 0) throw new Error(`GET ${path}: ${r.stderr}`);
  const nl = r.stdout.indexOf('\n');
  return { status: Number(r.stdout.slice(0, nl)), body: r.stdout.slice(nl + 1) };
}

/** kubeproxy_ts_endpoint_packets_total per endpoint of a service (ip:port -> value). */
export async function endpointPackets(cluster: Cluster, service: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const re = new RegExp(`^kubeproxy_ts_endpoint_packets_total\\{service="${service}",endpoint="([^"]+)"\\} (\\d+)$`, 'gm');
  for (const m of (await metricsGet(cluster, '/metrics')).body.matchAll(re)) out.set(m[1]!, Number(m[2]));
  return out;
}

/**
 * 30 TCP connections from the client to ns1/web's ClusterIP (172.30.0.10:80, endpoints 10.244.1.2-3): each endpoint
 * gets some, and its kubeproxy_ts_endpoint_packets_total rises by exactly the connections it answered, while
 * ns1/other's endpoint (10.244.1.4), which got none, stays at 0; web's first endpoint has counted bytes.
 */
export async function expectConnectionsCounted(cluster: Cluster): Promise<void> {
  const show = (m: Map<string, number>) => JSON.stringify([...m]);
  const before = await endpointPackets(cluster, 'ns1/web:p80');
  expect([...(await endpointPackets(cluster, 'ns1/other:p80'))]).toEqual([['10.244.1.4:8080', 0]]);
  const results = await request(cluster, cluster.client!.ns, { proto: 'tcp', ip: '172.30.0.10', port: 80, count: 30, timeoutMs: 2000 });
  const hits = podsHit(results);
  expect(results.every((r) => r.ok)).toBe(true);
  // Both endpoints got some (probability 1/2 each: all 30 on one is 2^-29).
  expect(hits.get('pod-a')).toBeGreaterThan(0);
  expect(hits.get('pod-b')).toBeGreaterThan(0);
  const want = new Map([
    ['10.244.1.2:8080', before.get('10.244.1.2:8080')! + hits.get('pod-a')!],
    ['10.244.1.3:8080', before.get('10.244.1.3:8080')! + hits.get('pod-b')!],
  ]);
  await waitFor(
    'counters read',
    async () => show(await endpointPackets(cluster, 'ns1/web:p80')) === show(want),
    10_000,
    () => show(want),
  );
  expect([...(await endpointPackets(cluster, 'ns1/other:p80'))]).toEqual([['10.244.1.4:8080', 0]]);
  const metrics = (await metricsGet(cluster, '/metrics')).body;
  expect(metrics).toMatch(/^kubeproxy_ts_endpoint_bytes_total\{service="ns1\/web:p80",endpoint="10\.244\.1\.2:8080"\} [1-9]\d*$/m);
}

/**
 * Batches of 10 TCP connections from the client to ns1/web, 100 ms apart, until `ran` settles (at most 30 s): traffic
 * for every frame of a `top` that runs meanwhile, however fast a batch goes. Resolves with what `ran` gave.
 */
export async function withTraffic<T>(cluster: Cluster, ran: Promise<T>): Promise<T> {
  let done = false;
  void ran.then(
    () => (done = true),
    () => (done = true),
  );
  for (const until = Date.now() + 30_000; !done && Date.now() < until;) {
    await request(cluster, cluster.client!.ns, { proto: 'tcp', ip: '172.30.0.10', port: 80, count: 10 });
    await new Promise((r) => setTimeout(r, 100));
  }
  return ran;
}
