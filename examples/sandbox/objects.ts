/**
 * The sandbox's layout and its cluster objects. The layout (nodes, pod
 * subnets, pods) is what test/netns/cluster.ts builds; the objects are
 * examples/sandbox-cluster.yaml, copied into a temporary directory that
 * kube-proxy-ts on both nodes watches (--objects DIR). The demo's change
 * (pod-a replaced by pod-d in web's EndpointSlice) is an edit of that copy.
 */
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dump, loadAll } from 'js-yaml';
import type { NodeSpec } from '../../test/netns/cluster.ts';

export const OBJECTS_SOURCE = fileURLToPath(new URL('../sandbox-cluster.yaml', import.meta.url));
export const OBJECTS_FILE = 'cluster.yaml';
export const CLUSTER_CIDR = '10.244.0.0/16';

/** toolbox sends requests and serves nothing; pod-a..pod-d run the pod servers. */
export const NODES: readonly NodeSpec[] = [
  {
    name: 'node-1',
    podCIDR: '10.244.1.0/24',
    pods: [
      { name: 'toolbox', ip: '10.244.1.9' },
      { name: 'pod-a', ip: '10.244.1.2' },
      { name: 'pod-b', ip: '10.244.1.3' },
    ],
  },
  {
    name: 'node-2',
    podCIDR: '10.244.2.0/24',
    pods: [
      { name: 'pod-c', ip: '10.244.2.2' },
      { name: 'pod-d', ip: '10.244.2.3' },
    ],
  },
];
export const SERVING_PODS = ['pod-a', 'pod-b', 'pod-c', 'pod-d'] as const;
/** Ports the pod servers listen on (the services' target ports). */
export const POD_PORTS = { tcp: [8080], udp: [5353] } as const;

export const WEB = { name: 'web', clusterIP: '172.30.0.10', port: 80, nodePort: 30080 } as const;
export const DNS = { name: 'dns', clusterIP: '172.30.0.53', port: 53 } as const;
/** The change: web's endpoint pod-a goes away, pod-d (node-2) takes its place. */
export const CHANGE = { service: 'web', remove: 'pod-a', add: 'pod-d' } as const;

export function nodeOfPod(pod: string): string {
  return NODES.find((n) => n.pods.some((p) => p.name === pod))?.name ?? '?';
}
function podByName(name: string): { name: string; ip: string; node: string } {
  for (const n of NODES) for (const p of n.pods) if (p.name === name) return { name, ip: p.ip, node: n.name };
  throw new Error(`no pod ${name} in the sandbox`);
}
function podByIP(ip: string): string {
  for (const n of NODES) for (const p of n.pods) if (p.ip === ip) return p.name;
  return ip;
}

type Doc = Record<string, unknown> & { kind?: string; metadata?: { name?: string; labels?: Record<string, string> } };
interface SliceEndpoint {
  addresses: string[];
  conditions?: { ready?: boolean };
  nodeName?: string;
  targetRef?: { kind: string; name: string };
}
interface ServicePort {
  name?: string;
  protocol?: string;
  port: number;
  targetPort?: number;
  nodePort?: number;
}

export async function copyObjects(dir: string): Promise<string> {
  const file = join(dir, OBJECTS_FILE);
  await copyFile(OBJECTS_SOURCE, file);
  return file;
}

async function readDocs(file: string): Promise<Doc[]> {
  return loadAll(await readFile(file, 'utf8')).filter((d): d is Doc => typeof d === 'object' && d !== null);
}

const sliceOf = (docs: readonly Doc[], service: string): Doc | undefined =>
  docs.find((d) => d.kind === 'EndpointSlice' && d.metadata?.labels?.['kubernetes.io/service-name'] === service);

/** One row per service: name, type, cluster IP, ports, endpoints as "pod-a@node-1". */
export async function serviceRows(file: string): Promise<string[][]> {
  const docs = await readDocs(file);
  return docs
    .filter((d) => d.kind === 'Service')
    .map((svc) => {
      const spec = svc['spec'] as { type?: string; clusterIP?: string; ports?: ServicePort[] };
      const ports = (spec.ports ?? []).map(
        (p) => `${p.port}/${p.protocol ?? 'TCP'}${p.nodePort ? ` (node port ${p.nodePort})` : ''} -> ${p.targetPort ?? p.port}`,
      );
      const endpoints = ((sliceOf(docs, svc.metadata?.name ?? '')?.['endpoints'] ?? []) as SliceEndpoint[]).map(
        (e) => `${e.targetRef?.name ?? podByIP(e.addresses[0] ?? '')}@${e.nodeName ?? '?'}`,
      );
      return [svc.metadata?.name ?? '?', spec.type ?? 'ClusterIP', spec.clusterIP ?? '', ports.join(', '), endpoints.join(' ')];
    });
}

/** Rewrites the file with `remove` taken out of the service's EndpointSlice and `add` put in; returns the new endpoint pods. */
export async function replaceEndpoint(file: string, change: { service: string; remove: string; add: string }): Promise<string[]> {
  const docs = await readDocs(file);
  const slice = sliceOf(docs, change.service);
  if (!slice) throw new Error(`no EndpointSlice for ${change.service} in ${file}`);
  const gone = podByName(change.remove);
  const next = podByName(change.add);
  const endpoints = (slice['endpoints'] as SliceEndpoint[]).filter((e) => !e.addresses.includes(gone.ip));
  endpoints.push({ addresses: [next.ip], conditions: { ready: true }, nodeName: next.node, targetRef: { kind: 'Pod', name: next.name } });
  slice['endpoints'] = endpoints;
  // In place (not rename): the agents watch the directory and re-read the file.
  await writeFile(file, docs.map((d) => dump(d, { lineWidth: -1 })).join('---\n'));
  return endpoints.map((e) => e.targetRef?.name ?? podByIP(e.addresses[0] ?? ''));
}
