/**
 * What the two traffic-counter end-to-end tests (iptables and nftables mode)
 * share: one node with three pods answering TCP 8080 and an outside client,
 * and the agent's metrics server read from inside the node's namespace (it
 * listens on the namespace's loopback), as `kubectl exec` into its pod would.
 */
import type { ClusterSpec } from './netns/address-plan.ts';
import type { Cluster } from './netns/cluster.ts';

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
