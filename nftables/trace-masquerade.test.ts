import { describe, it } from 'vitest';
import { makeEndpointSlice, makeService } from '../test/builders.ts';
import { renderNftables, tableOf } from './render.ts';
import { checkFlow, type PacketFlowTest } from './trace.case.ts';
import { TEST_EXTERNAL_CLIENT as EXT, TEST_NODE, TEST_NODE_IP as NODE, upstreamOptions, upstreamSnapshot } from './upstream.case.ts';

// upstream TestInternalExternalMasquerade: three LoadBalancers (plain, eTP Local, iTP Local), each with a local and a remote endpoint.
const services = [
  makeService('ns1', 'svc1', {
    type: 'LoadBalancer',
    clusterIP: '172.30.0.41',
    ports: [{ name: 'p80', port: 80, nodePort: 3001 }],
    healthCheckNodePort: 30001,
    ingress: [{ ip: '1.2.3.4' }],
  }),
  makeService('ns2', 'svc2', {
    type: 'LoadBalancer',
    clusterIP: '172.30.0.42',
    ports: [{ name: 'p80', port: 80, nodePort: 3002 }],
    healthCheckNodePort: 30002,
    externalTrafficPolicy: 'Local',
    ingress: [{ ip: '5.6.7.8' }],
  }),
  makeService('ns3', 'svc3', {
    type: 'LoadBalancer',
    clusterIP: '172.30.0.43',
    ports: [{ name: 'p80', port: 80, nodePort: 3003 }],
    healthCheckNodePort: 30003,
    internalTrafficPolicy: 'Local',
    ingress: [{ ip: '9.10.11.12' }],
  }),
];
const slices = [1, 2, 3].map((n) =>
  makeEndpointSlice(`ns${n}`, `svc${n}`, {
    endpoints: [
      { ip: `10.180.0.${n}`, nodeName: TEST_NODE },
      { ip: `10.180.1.${n}`, nodeName: 'remote' },
    ],
    ports: [{ name: 'p80', port: 80, protocol: 'TCP' }],
  }),
);

const all = (n: number) => `10.180.0.${n}:80, 10.180.1.${n}:80`;
const local = (n: number) => `10.180.0.${n}:80`;
const f = (name: string, sourceIP: string, destIP: string, destPort: number, output: string, masq: boolean): PacketFlowTest => ({
  name,
  sourceIP,
  destIP,
  destPort,
  output,
  masq,
});

const FLOWS: readonly PacketFlowTest[] = [
  f('pod to ClusterIP', '10.0.0.2', '172.30.0.41', 80, all(1), false),
  f('pod to NodePort', '10.0.0.2', NODE, 3001, all(1), true),
  f('pod to LB', '10.0.0.2', '1.2.3.4', 80, all(1), true),
  f('node to ClusterIP', NODE, '172.30.0.41', 80, all(1), true),
  f('node to NodePort', NODE, NODE, 3001, all(1), true),
  f('node to LB', NODE, '1.2.3.4', 80, all(1), true),
  f('external to ClusterIP', EXT, '172.30.0.41', 80, all(1), true),
  f('external to NodePort', EXT, NODE, 3001, all(1), true),
  f('external to LB', EXT, '1.2.3.4', 80, all(1), true),
  f('pod to ClusterIP with eTP:Local', '10.0.0.2', '172.30.0.42', 80, all(2), false),
  f('pod to NodePort with eTP:Local', '10.0.0.2', NODE, 3002, all(2), false),
  f('pod to LB with eTP:Local', '10.0.0.2', '5.6.7.8', 80, all(2), false),
  f('node to ClusterIP with eTP:Local', NODE, '172.30.0.42', 80, all(2), true),
  // Upstream's case uses port 3001 (svc1), so it expects svc1's endpoints.
  f('node to NodePort with eTP:Local', NODE, NODE, 3001, all(1), true),
  f('node to LB with eTP:Local', NODE, '5.6.7.8', 80, all(2), true),
  f('external to ClusterIP with eTP:Local', EXT, '172.30.0.42', 80, all(2), true),
  f('external to NodePort with eTP:Local', EXT, NODE, 3002, local(2), false),
  f('external to LB with eTP:Local', EXT, '5.6.7.8', 80, local(2), false),
  f('pod to ClusterIP with iTP:Local', '10.0.0.2', '172.30.0.43', 80, local(3), false),
  f('pod to NodePort with iTP:Local', '10.0.0.2', NODE, 3003, all(3), true),
  f('pod to LB with iTP:Local', '10.0.0.2', '9.10.11.12', 80, all(3), true),
  f('node to ClusterIP with iTP:Local', NODE, '172.30.0.43', 80, local(3), true),
  f('node to NodePort with iTP:Local', NODE, NODE, 3003, all(3), true),
  f('node to LB with iTP:Local', NODE, '9.10.11.12', 80, all(3), true),
  f('external to ClusterIP with iTP:Local', EXT, '172.30.0.43', 80, local(3), true),
  f('external to NodePort with iTP:Local', EXT, NODE, 3003, all(3), true),
  f('external to LB with iTP:Local', EXT, '9.10.11.12', 80, all(3), true),
];

type Override = { masq?: boolean; output?: string };
const NO_DETECTOR: Record<string, Override> = {
  // Without a detector all ClusterIP traffic is assumed to come from pods: no masquerade...
  'node to ClusterIP': { masq: false },
  'node to ClusterIP with eTP:Local': { masq: false },
  'node to ClusterIP with iTP:Local': { masq: false },
  'external to ClusterIP': { masq: false },
  'external to ClusterIP with eTP:Local': { masq: false },
  'external to ClusterIP with iTP:Local': { masq: false },
  // ...and no eTP:Local short-circuit for pods, which get only the local endpoints.
  'pod to NodePort with eTP:Local': { output: local(2) },
  'pod to LB with eTP:Local': { output: local(2) },
};
const MASQ_ALL: Record<string, Override> = {
  'pod to ClusterIP': { masq: true },
  'pod to ClusterIP with eTP:Local': { masq: true },
  'pod to ClusterIP with iTP:Local': { masq: true },
};

const CONFIGS: [string, boolean, boolean, Record<string, Override>][] = [
  ['base', false, true, {}],
  ['no LocalTrafficDetector', false, false, NO_DETECTOR],
  ['masqueradeAll', true, true, MASQ_ALL],
  [
    'masqueradeAll, no LocalTrafficDetector',
    true,
    false,
    { ...MASQ_ALL, 'pod to NodePort with eTP:Local': { output: local(2) }, 'pod to LB with eTP:Local': { output: local(2) } },
  ],
];

// Generation A, and upstream's v1.36+ generation B (nftables-mode.md §1.10: inline marks, the ClusterIP masquerade in
// services, hairpin masquerade through @hairpin-connections), masquerade the same flows.
describe.each(['A', 'B'] as const)('upstream TestInternalExternalMasquerade through the tracer, generation %s', (generation) => {
  for (const [name, masqueradeAll, detector, overrides] of CONFIGS) {
    describe(name, () => {
      const table = tableOf(
        renderNftables(
          upstreamSnapshot('IPv4', services, slices),
          upstreamOptions('IPv4', { generation, masqueradeAll, ...(detector ? {} : { detectLocal: null }) }),
        ),
      );
      for (const flow of FLOWS) it(flow.name, () => checkFlow(table, { ...flow, ...overrides[flow.name] }));
    });
  }
});
