/**
 * The cluster the benches load: N ClusterIP Services of one TCP port with 5
 * endpoints each (one EndpointSlice per Service) and the bench's Node, shaped
 * as an API server hands them out (uid, creationTimestamp, labels,
 * managedFields, endpoint conditions and targetRefs, a Node with its status),
 * so that what informers and parsers hold is what they would hold on a real
 * cluster, not a trimmed test object.
 */
import { makeEndpointSlice, makeNode, makeService } from '../test/builders.ts';

export const BENCH_NODE = 'bench-node';
const TIME = '2026-11-20T10:00:00Z';

const uid = (i: number, kind: number): string => {
  const h = ((i + 1) * 2654435761 + kind * 40503) >>> 0;
  return `${h.toString(16).padStart(8, '0')}-${(i & 0xffff).toString(16).padStart(4, '0')}-4${kind}00-8000-${(i * 7919).toString(16).padStart(12, '0')}`;
};

export const serviceIP = (i: number): string => `172.${20 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
export const endpointIP = (i: number, j: number): string => `10.${(i >> 8) & 255}.${i & 255}.${j + 1}`;

export function benchService(i: number): Record<string, unknown> {
  const name = `svc-${i}`;
  return makeService('bench', name, {
    clusterIP: serviceIP(i),
    ports: [{ name: 'p80', port: 80, targetPort: 8080 }],
    labels: { app: name },
    spec: { selector: { app: name } },
    metadata: {
      uid: uid(i, 1),
      creationTimestamp: TIME,
      managedFields: [
        {
          manager: 'kubectl-client-side-apply',
          operation: 'Update',
          apiVersion: 'v1',
          time: TIME,
          fieldsType: 'FieldsV1',
          fieldsV1: {
            'f:metadata': { 'f:labels': { '.': {}, 'f:app': {} } },
            'f:spec': {
              'f:internalTrafficPolicy': {},
              'f:ports': { '.': {}, 'k:{"port":80,"protocol":"TCP"}': { '.': {}, 'f:name': {}, 'f:port': {}, 'f:protocol': {}, 'f:targetPort': {} } },
              'f:selector': {},
              'f:sessionAffinity': {},
              'f:type': {},
            },
          },
        },
      ],
    },
  });
}

export function benchSlice(i: number, endpointsPer = 5, node = BENCH_NODE): Record<string, unknown> {
  const name = `svc-${i}`;
  const slice = makeEndpointSlice('bench', name, `${name}-slice`, {
    endpoints: Array.from({ length: endpointsPer }, (_, j) => ({
      ip: endpointIP(i, j),
      nodeName: j === 0 ? node : `node-${j}`,
      targetRef: { kind: 'Pod', namespace: 'bench', name: `${name}-pod-${j}`, uid: uid(i * 8 + j, 3) },
    })),
    ports: [{ name: 'p80', port: 8080 }],
    labels: { 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' },
    metadata: {
      uid: uid(i, 2),
      creationTimestamp: TIME,
      generateName: `${name}-`,
      ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name, uid: uid(i, 1), controller: true, blockOwnerDeletion: true }],
      managedFields: [
        {
          manager: 'kube-controller-manager',
          operation: 'Update',
          apiVersion: 'discovery.k8s.io/v1',
          time: TIME,
          fieldsType: 'FieldsV1',
          fieldsV1: {
            'f:addressType': {},
            'f:endpoints': {},
            'f:metadata': {
              'f:generateName': {},
              'f:labels': { '.': {}, 'f:endpointslice.kubernetes.io/managed-by': {}, 'f:kubernetes.io/service-name': {} },
              'f:ownerReferences': { '.': {}, [`k:{"uid":"${uid(i, 1)}"}`]: {} },
            },
            'f:ports': {},
          },
        },
      ],
    },
  });
  return slice;
}

export function benchNode(name = BENCH_NODE): Record<string, unknown> {
  return makeNode(name, {
    addresses: ['192.168.0.2'],
    podCIDR: '10.244.1.0/24',
    metadata: { uid: uid(0, 4), creationTimestamp: TIME },
    status: {
      capacity: { cpu: '2', memory: '24000000Ki', pods: '110' },
      allocatable: { cpu: '2', memory: '23900000Ki', pods: '110' },
      conditions: ['MemoryPressure', 'DiskPressure', 'PIDPressure', 'Ready'].map((type) => ({
        type,
        status: type === 'Ready' ? 'True' : 'False',
        lastHeartbeatTime: TIME,
        lastTransitionTime: TIME,
        reason: `Kubelet${type}`,
        message: `kubelet reports ${type}`,
      })),
      images: Array.from({ length: 40 }, (_, k) => ({
        names: [
          `registry.example/team-${k}/image-${k}@sha256:${uid(k, 5).replace(/-/g, '').repeat(2)}`,
          `registry.example/team-${k}/image-${k}:v1.${k}`,
        ],
        sizeBytes: 10_000_000 + k * 123_457,
      })),
      nodeInfo: { kubeletVersion: 'v1.34.0', kubeProxyVersion: '', containerRuntimeVersion: 'containerd://2.1.0', osImage: 'Debian 12' },
    },
  });
}

/** The objects of a cluster of n services, as the API server lists them. */
export function benchCluster(
  n: number,
  endpointsPer = 5,
): { services: Record<string, unknown>[]; slices: Record<string, unknown>[]; node: Record<string, unknown> } {
  const services: Record<string, unknown>[] = [];
  const slices: Record<string, unknown>[] = [];
  for (let i = 0; i < n; i++) {
    services.push(benchService(i));
    slices.push(benchSlice(i, endpointsPer));
  }
  return { services, slices, node: benchNode() };
}
