import { describe, expect, it } from 'vitest';
import { categorizeEndpoints } from './topology.ts';
import { endpointString } from './types.ts';
import type { Endpoint, ServicePort } from './types.ts';

// Cases ported from upstream pkg/proxy/topology_test.go TestCategorizeEndpoints,
// plus PreferSameNode (node hints) and topologyReason cases derived from topology.go.

function svc(over: Partial<ServicePort> = {}): ServicePort {
  return {
    key: 'ns/svc',
    namespace: 'ns',
    name: 'svc',
    portName: '',
    protocol: 'TCP',
    clusterIP: '172.30.0.1',
    port: 80,
    nodePort: 0,
    externalIPs: [],
    loadBalancerVIPs: [],
    loadBalancerSourceRanges: [],
    sessionAffinityTimeout: 0,
    externalPolicyLocal: false,
    internalPolicyLocal: false,
    healthCheckNodePort: 0,
    trafficDistribution: null,
    ...over,
  };
}

interface EpOpts {
  zones?: string[];
  nodes?: string[];
  ready?: boolean;
  serving?: boolean;
  terminating?: boolean;
  local?: boolean;
}
function ep(hostPort: string, o: EpOpts = {}): Endpoint {
  const [ip, port] = hostPort.split(':') as [string, string];
  const ready = o.ready ?? true;
  return {
    ip,
    port: Number(port),
    ready,
    serving: o.serving ?? ready,
    terminating: o.terminating ?? false,
    nodeName: o.local ? 'node-1' : null,
    zone: null,
    isLocal: o.local ?? false,
    zoneHints: o.zones ?? null,
    nodeHints: o.nodes ?? null,
  };
}
const zoned = (zones: string[][], extra: EpOpts[] = []) => zones.map((z, i) => ep(`10.1.2.${i + 3}:80`, { zones: z, ...extra[i] }));

interface Case {
  name: string;
  zone?: string | null;
  pte?: boolean;
  service: ServicePort;
  endpoints: Endpoint[];
  cluster: string[] | null;
  local: string[] | null;
  /** Only when both lists are used; otherwise the used list. */
  all?: string[];
  /** hasAny although allReachable is empty. */
  onlyRemote?: boolean;
}

const withZoneA = { zone: 'zone-a' };
const cases: Case[] = [
  {
    name: 'uses topology: all endpoints hinted, node zone labelled, endpoints for the zone',
    ...withZoneA,
    service: svc(),
    endpoints: zoned([['zone-a'], ['zone-b'], ['zone-c'], ['zone-a']]),
    cluster: ['10.1.2.3:80', '10.1.2.6:80'],
    local: null,
  },
  {
    name: 'eTP Local: topology ignored for local endpoints',
    ...withZoneA,
    service: svc({ externalPolicyLocal: true, nodePort: 8080 }),
    endpoints: zoned([['zone-a'], ['zone-b'], ['zone-c'], ['zone-a']], [{ local: true }, { local: true }]),
    cluster: ['10.1.2.3:80', '10.1.2.6:80'],
    local: ['10.1.2.3:80', '10.1.2.4:80'],
    all: ['10.1.2.3:80', '10.1.2.4:80', '10.1.2.6:80'],
  },
  {
    name: 'iTP Local: topology ignored for local endpoints',
    ...withZoneA,
    service: svc({ internalPolicyLocal: true, nodePort: 8080 }),
    endpoints: zoned([['zone-a'], ['zone-b'], ['zone-c'], ['zone-a']], [{ local: true }, { local: true }]),
    cluster: ['10.1.2.3:80', '10.1.2.6:80'],
    local: ['10.1.2.3:80', '10.1.2.4:80'],
    all: ['10.1.2.3:80', '10.1.2.4:80', '10.1.2.6:80'],
  },
  { name: 'empty node labels', zone: null, service: svc(), endpoints: zoned([['zone-a']]), cluster: ['10.1.2.3:80'], local: null },
  { name: 'empty zone label', zone: '', service: svc(), endpoints: zoned([['zone-a']]), cluster: ['10.1.2.3:80'], local: null },
  {
    name: 'node in different zone, no endpoint filtering',
    zone: 'zone-b',
    service: svc(),
    endpoints: zoned([['zone-a']]),
    cluster: ['10.1.2.3:80'],
    local: null,
  },
  {
    name: 'unready endpoint',
    ...withZoneA,
    service: svc(),
    endpoints: zoned([['zone-a'], ['zone-b'], ['zone-c'], ['zone-a']], [{}, {}, {}, { ready: false }]),
    cluster: ['10.1.2.3:80'],
    local: null,
  },
  {
    name: 'only unready endpoints in same zone (should not filter)',
    ...withZoneA,
    service: svc(),
    endpoints: zoned([['zone-a'], ['zone-b'], ['zone-c'], ['zone-a']], [{ ready: false }, {}, {}, { ready: false }]),
    cluster: ['10.1.2.4:80', '10.1.2.5:80'],
    local: null,
  },
  {
    name: 'missing hints, no filtering applied',
    ...withZoneA,
    service: svc(),
    endpoints: [...zoned([['zone-a'], ['zone-b']]), ep('10.1.2.5:80'), ep('10.1.2.6:80', { zones: ['zone-a'] })],
    cluster: ['10.1.2.3:80', '10.1.2.4:80', '10.1.2.5:80', '10.1.2.6:80'],
    local: null,
  },
  {
    name: 'multiple hints per endpoint, filtering includes any endpoint with zone included',
    zone: 'zone-c',
    service: svc(),
    endpoints: zoned([['zone-a', 'zone-b', 'zone-c'], ['zone-b', 'zone-c'], ['zone-b', 'zone-d'], ['zone-c']]),
    cluster: ['10.1.2.3:80', '10.1.2.4:80', '10.1.2.6:80'],
    local: null,
  },
  {
    name: 'conflicting topology and localness require merging allEndpoints',
    ...withZoneA,
    service: svc({ externalPolicyLocal: true, nodePort: 8080 }),
    endpoints: [
      ep('10.0.0.0:80', { zones: ['zone-a'], local: true }),
      ep('10.0.0.1:80', { zones: ['zone-b'], local: true }),
      ep('10.0.0.2:80', { zones: ['zone-a'] }),
      ep('10.0.0.3:80', { zones: ['zone-b'] }),
    ],
    cluster: ['10.0.0.0:80', '10.0.0.2:80'],
    local: ['10.0.0.0:80', '10.0.0.1:80'],
    all: ['10.0.0.0:80', '10.0.0.1:80', '10.0.0.2:80'],
  },
  { name: 'iTP Local, with empty endpoints', service: svc({ internalPolicyLocal: true }), endpoints: [], cluster: null, local: [] },
  {
    name: 'iTP Local, but all endpoints are remote',
    service: svc({ internalPolicyLocal: true }),
    endpoints: [ep('10.0.0.0:80'), ep('10.0.0.1:80')],
    cluster: null,
    local: [],
    onlyRemote: true,
  },
  {
    name: 'iTP Local, all endpoints are local',
    service: svc({ internalPolicyLocal: true }),
    endpoints: [ep('10.0.0.0:80', { local: true }), ep('10.0.0.1:80', { local: true })],
    cluster: null,
    local: ['10.0.0.0:80', '10.0.0.1:80'],
  },
  {
    name: 'iTP Local, some endpoints are local',
    service: svc({ internalPolicyLocal: true }),
    endpoints: [ep('10.0.0.0:80', { local: true }), ep('10.0.0.1:80')],
    cluster: null,
    local: ['10.0.0.0:80'],
  },
  {
    name: 'Cluster traffic policy, endpoints not Ready',
    service: svc(),
    endpoints: [ep('10.0.0.0:80', { ready: false }), ep('10.0.0.1:80', { ready: false })],
    cluster: [],
    local: null,
  },
  {
    name: 'Cluster traffic policy, some endpoints are Ready',
    service: svc(),
    endpoints: [ep('10.0.0.0:80', { ready: false }), ep('10.0.0.1:80')],
    cluster: ['10.0.0.1:80'],
    local: null,
  },
  {
    name: 'Cluster traffic policy, all endpoints are terminating',
    service: svc(),
    endpoints: [
      ep('10.0.0.0:80', { ready: false, serving: true, terminating: true, local: true }),
      ep('10.0.0.1:80', { ready: false, serving: true, terminating: true }),
    ],
    cluster: ['10.0.0.0:80', '10.0.0.1:80'],
    local: null,
  },
  {
    name: 'iTP Local, eTP Cluster, some endpoints local',
    service: svc({ internalPolicyLocal: true, nodePort: 8080 }),
    endpoints: [ep('10.0.0.0:80', { local: true }), ep('10.0.0.1:80')],
    cluster: ['10.0.0.0:80', '10.0.0.1:80'],
    local: ['10.0.0.0:80'],
    all: ['10.0.0.0:80', '10.0.0.1:80'],
  },
  {
    name: 'iTP Cluster, eTP Local, some endpoints local',
    service: svc({ externalPolicyLocal: true, nodePort: 8080 }),
    endpoints: [ep('10.0.0.0:80', { local: true }), ep('10.0.0.1:80')],
    cluster: ['10.0.0.0:80', '10.0.0.1:80'],
    local: ['10.0.0.0:80'],
    all: ['10.0.0.0:80', '10.0.0.1:80'],
  },
  {
    name: 'iTP Local, eTP Local, some endpoints local',
    service: svc({ internalPolicyLocal: true, externalPolicyLocal: true, nodePort: 8080 }),
    endpoints: [ep('10.0.0.0:80', { local: true }), ep('10.0.0.1:80')],
    cluster: ['10.0.0.0:80', '10.0.0.1:80'],
    local: ['10.0.0.0:80'],
    all: ['10.0.0.0:80', '10.0.0.1:80'],
  },
  {
    name: 'iTP Local, eTP Local, all endpoints remote',
    service: svc({ internalPolicyLocal: true, externalPolicyLocal: true, nodePort: 8080 }),
    endpoints: [ep('10.0.0.0:80'), ep('10.0.0.1:80')],
    cluster: ['10.0.0.0:80', '10.0.0.1:80'],
    local: [],
    all: ['10.0.0.0:80', '10.0.0.1:80'],
  },
  {
    name: 'iTP Local, eTP Local, all endpoints remote and terminating',
    service: svc({ internalPolicyLocal: true, externalPolicyLocal: true, nodePort: 8080 }),
    endpoints: [
      ep('10.0.0.0:80', { ready: false, serving: true, terminating: true }),
      ep('10.0.0.1:80', { ready: false, serving: true, terminating: true }),
    ],
    cluster: ['10.0.0.0:80', '10.0.0.1:80'],
    local: [],
    all: ['10.0.0.0:80', '10.0.0.1:80'],
  },
  {
    name: 'iTP Cluster, eTP Local, with terminating endpoints',
    service: svc({ externalPolicyLocal: true, nodePort: 8080 }),
    endpoints: [
      ep('10.0.0.0:80'),
      ep('10.0.0.1:80', { ready: false, serving: false, local: true }),
      ep('10.0.0.2:80', { ready: false, serving: true, terminating: true, local: true }),
      ep('10.0.0.3:80', { ready: false, serving: true, terminating: true }),
    ],
    cluster: ['10.0.0.0:80'],
    local: ['10.0.0.2:80'],
    all: ['10.0.0.0:80', '10.0.0.2:80'],
  },
  {
    name: 'externalTrafficPolicy ignored if not externally accessible',
    service: svc({ externalPolicyLocal: true }),
    endpoints: [ep('10.0.0.0:80'), ep('10.0.0.1:80', { local: true })],
    cluster: ['10.0.0.0:80', '10.0.0.1:80'],
    local: null,
  },
  {
    name: 'no cluster endpoints for iTP Local internal-only service',
    service: svc({ internalPolicyLocal: true }),
    endpoints: [ep('10.0.0.0:80'), ep('10.0.0.1:80', { local: true })],
    cluster: null,
    local: ['10.0.0.1:80'],
  },
  {
    name: 'iTP Local: only remote serving-terminating endpoints still count as "any"',
    service: svc({ internalPolicyLocal: true }),
    endpoints: [ep('10.0.0.0:80', { ready: false, serving: true, terminating: true })],
    cluster: null,
    local: [],
    onlyRemote: true,
  },
  {
    name: 'iTP Local: unready, non-serving endpoints count as none',
    service: svc({ internalPolicyLocal: true }),
    endpoints: [ep('10.0.0.0:80', { ready: false, serving: false, local: true })],
    cluster: null,
    local: [],
  },
  // PreferSameNode (node hints), derived from topologyModeFromHints.
  {
    name: 'node hints for this node: PreferSameNode',
    ...withZoneA,
    service: svc(),
    endpoints: [ep('10.0.0.1:80', { nodes: ['node-1'], zones: ['zone-b'] }), ep('10.0.0.2:80', { nodes: ['node-2'], zones: ['zone-a'] })],
    cluster: ['10.0.0.1:80'],
    local: null,
  },
  {
    name: 'node hints with the feature gate off: zone hints decide',
    ...withZoneA,
    pte: false,
    service: svc(),
    endpoints: [ep('10.0.0.1:80', { nodes: ['node-1'], zones: ['zone-b'] }), ep('10.0.0.2:80', { nodes: ['node-2'], zones: ['zone-a'] })],
    cluster: ['10.0.0.2:80'],
    local: null,
  },
  {
    name: 'no node hint for this node: falls back to zone hints',
    ...withZoneA,
    service: svc(),
    endpoints: [ep('10.0.0.1:80', { nodes: ['node-3'], zones: ['zone-a'] }), ep('10.0.0.2:80', { nodes: ['node-2'], zones: ['zone-b'] })],
    cluster: ['10.0.0.1:80'],
    local: null,
  },
  {
    name: 'a ready endpoint without node hints disables PreferSameNode',
    service: svc(),
    endpoints: [ep('10.0.0.1:80', { nodes: ['node-1'] }), ep('10.0.0.2:80')],
    cluster: ['10.0.0.1:80', '10.0.0.2:80'],
    local: null,
  },
  {
    name: 'an unready endpoint without node hints does not disable PreferSameNode',
    service: svc(),
    endpoints: [ep('10.0.0.1:80', { nodes: ['node-1'] }), ep('10.0.0.2:80', { ready: false })],
    cluster: ['10.0.0.1:80'],
    local: null,
  },
];

describe('categorizeEndpoints (upstream TestCategorizeEndpoints)', () => {
  it.each(cases)('$name', (tc) => {
    const node = { name: 'node-1', zone: tc.zone ?? null };
    const got = categorizeEndpoints(tc.endpoints, tc.service, node, { preferSameTrafficDistribution: tc.pte ?? true });
    const keys = (eps: readonly Endpoint[] | null) => (eps === null ? null : eps.map(endpointString));
    expect(keys(got.cluster)).toEqual(tc.cluster);
    expect(keys(got.local)).toEqual(tc.local);
    const all = tc.cluster !== null && tc.local === null ? tc.cluster : tc.local !== null && tc.cluster === null ? tc.local : tc.all;
    expect(keys(got.allReachable)).toEqual(all);
    expect(got.hasAny).toBe((all?.length ?? 0) > 0 || (tc.onlyRemote ?? false));
  });
});

describe('topologyReason', () => {
  const reason = (endpoints: Endpoint[], zone: string | null = 'zone-a') =>
    categorizeEndpoints(endpoints, svc(), { name: 'node-1', zone }, { preferSameTrafficDistribution: true }).topologyReason;

  it('says which hints were applied', () => {
    expect(reason(zoned([['zone-a'], ['zone-b']]))).toBe('PreferSameZone: using endpoints hinted for zone zone-a');
    expect(reason([ep('10.0.0.1:80', { nodes: ['node-1'] })])).toBe('PreferSameNode: using endpoints hinted for node node-1');
  });

  it('says why hints were ignored', () => {
    expect(reason(zoned([['zone-a']]), null)).toBe('ignoring topology hints: this node has no topology.kubernetes.io/zone label');
    expect(reason(zoned([['zone-b']]))).toBe('ignoring topology hints: no endpoint is hinted for zone zone-a');
    expect(reason([...zoned([['zone-a']]), ep('10.0.0.9:80')])).toBe('ignoring topology hints: some ready endpoints have no zone hints');
    expect(reason([ep('10.0.0.1:80', { nodes: ['node-2'] })])).toBe('ignoring topology hints: no endpoint is hinted for node node-1');
  });

  it('is null without any hints or without cluster endpoints in use', () => {
    expect(reason([ep('10.0.0.1:80')])).toBeNull();
    const itpLocal = categorizeEndpoints(
      zoned([['zone-a']]),
      svc({ internalPolicyLocal: true }),
      { name: 'node-1', zone: 'zone-a' },
      { preferSameTrafficDistribution: true },
    );
    expect(itpLocal.topologyReason).toBeNull();
  });
});
