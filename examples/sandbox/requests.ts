/**
 * Real requests through the sandbox (test/netns/traffic.ts: a small client
 * run inside a namespace; the pod servers answer with their pod name), the
 * paths the demo shows, and the wait for traffic to follow a change.
 */
import type { Cluster } from '../../test/netns/cluster.ts';
import { errorsSeen, podsHit, request, type RequestResult } from '../../test/netns/traffic.ts';
import { DNS, WEB } from './objects.ts';

export interface Path {
  /** How the story names it. */
  readonly title: string;
  /** Which node's rules (or proxy) the requests go through. */
  readonly via: string;
  readonly fromNs: (cluster: Cluster) => string;
  readonly proto: 'tcp' | 'udp';
  readonly ip: string;
  readonly port: number;
}

export const POD_TO_WEB: Path = {
  title: `TCP from pod toolbox (node-1) to web's cluster IP ${WEB.clusterIP}:${WEB.port}`,
  via: 'node-1',
  fromNs: (c) => c.pod('toolbox').ns,
  proto: 'tcp',
  ip: WEB.clusterIP,
  port: WEB.port,
};
export const OUTSIDE_TO_NODEPORT: Path = {
  title: `TCP from the outside client (192.168.50.200) to web's node port on node-2, 192.168.50.12:${WEB.nodePort}`,
  via: 'node-2',
  fromNs: (c) => c.client!.ns,
  proto: 'tcp',
  ip: '192.168.50.12',
  port: WEB.nodePort,
};
export const POD_TO_DNS: Path = {
  title: `UDP from pod toolbox (node-1) to dns's cluster IP ${DNS.clusterIP}:${DNS.port}`,
  via: 'node-1',
  fromNs: (c) => c.pod('toolbox').ns,
  proto: 'udp',
  ip: DNS.clusterIP,
  port: DNS.port,
};

export interface Outcome {
  readonly hits: Map<string, number>;
  readonly failed: number;
  readonly errors: Map<string, number>;
}

export async function send(cluster: Cluster, path: Path, count: number, timeoutMs = 1000): Promise<Outcome> {
  const results: RequestResult[] = await request(cluster, path.fromNs(cluster), {
    proto: path.proto,
    ip: path.ip,
    port: path.port,
    count,
    timeoutMs,
  });
  const errors = errorsSeen(results);
  return { hits: podsHit(results), failed: [...errors.values()].reduce((a, b) => a + b, 0), errors };
}

/** Problems with an outcome: failures, and answers from pods outside `endpoints`. */
export function problems(o: Outcome, endpoints: readonly string[]): string[] {
  const out: string[] = [];
  if (o.failed > 0) out.push(`${o.failed} request(s) failed: ${[...o.errors].map(([e, n]) => `${e} x${n}`).join(', ')}`);
  const strays = [...o.hits.keys()].filter((p) => !endpoints.includes(p));
  if (strays.length > 0) out.push(`answered by ${strays.join(', ')}, which ${strays.length > 1 ? 'are' : 'is'} not an endpoint`);
  return out;
}

/**
 * Sends small batches along `path` until one is answered by `added` and never
 * by `removed` (without failures); resolves to the time since `since`.
 */
export async function waitFollowed(
  cluster: Cluster,
  path: Path,
  change: { remove: string; add: string },
  since: number,
  signal: AbortSignal,
  timeoutMs = 20_000,
): Promise<number> {
  for (;;) {
    signal.throwIfAborted();
    const o = await send(cluster, path, 6, 500);
    if (o.failed === 0 && o.hits.has(change.add) && !o.hits.has(change.remove)) return Date.now() - since;
    if (Date.now() - since > timeoutMs) {
      throw new Error(
        `${path.via}: traffic did not follow the change within ${timeoutMs / 1000} s (last answers: ${[...o.hits].map(([p, n]) => `${p} x${n}`).join(', ') || 'none'})`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
