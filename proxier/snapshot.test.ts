import { describe, expect, it } from 'vitest';
import { makeEndpointSlice, makeNode, makeService } from '../test/builders.ts';
import { indexEndpointSlices } from './endpoint-slices.ts';
import { nodeInfoFrom } from './node-info.ts';
import { buildSnapshots, servicePortStates } from './snapshot.ts';
import { endpointString, formatProblem } from './types.ts';
import type { IPFamily, Snapshot } from './types.ts';

const features = { preferSameTrafficDistribution: true };
const node = makeNode('node-1', { addresses: ['192.168.0.11'], zone: 'zone-a', podCIDR: '10.244.1.0/24' });
const build = (services: unknown[], slices: unknown[] = [], o: { node?: unknown; families?: IPFamily[] } = {}) =>
  buildSnapshots(
    { services, slices, node: o.node === undefined ? node : o.node },
    { nodeName: 'node-1', features, ...(o.families ? { families: o.families } : {}) },
  );
const summary = (s: Snapshot | undefined) => s?.services.map((st) => [st.service.key, st.service.protocol, st.endpoints.map(endpointString)]);

describe('buildSnapshots', () => {
  it('pairs every service port with its endpoints and selection', () => {
    const { snapshots, problems } = build(
      [
        makeService('ns1', 'svc1', {
          clusterIP: '172.30.0.41',
          type: 'NodePort',
          externalTrafficPolicy: 'Local',
          ports: [{ name: 'p80', port: 80, nodePort: 30080 }],
        }),
      ],
      [
        makeEndpointSlice('ns1', 'svc1', {
          endpoints: [
            { ip: '10.244.1.2', nodeName: 'node-1' },
            { ip: '10.244.2.2', nodeName: 'node-2' },
          ],
          ports: [{ name: 'p80', port: 8080 }],
        }),
      ],
    );
    expect(problems).toEqual([]);
    expect(snapshots.map((s) => s.family)).toEqual(['IPv4']);
    const [state] = snapshots[0]!.services;
    expect(state?.service).toMatchObject({ key: 'ns1/svc1:p80', nodePort: 30080, externalPolicyLocal: true });
    expect(state?.endpoints.map(endpointString)).toEqual(['10.244.1.2:8080', '10.244.2.2:8080']);
    expect(state?.selection.cluster?.map(endpointString)).toEqual(['10.244.1.2:8080', '10.244.2.2:8080']);
    expect(state?.selection.local?.map(endpointString)).toEqual(['10.244.1.2:8080']);
    expect(state?.selection.hasAny).toBe(true);
    expect(snapshots[0]!.node).toMatchObject({ name: 'node-1', known: true, zone: 'zone-a', primaryIP: '192.168.0.11' });
  });

  it('sorts service ports by key whatever the input order', () => {
    const services = [
      makeService('ns2', 'a', { ports: [{ name: 'x', port: 1 }] }),
      makeService('ns1', 'b', {
        ports: [
          { name: 'q', port: 2 },
          { name: 'p', port: 3, protocol: 'UDP' },
        ],
      }),
      makeService('ns1', 'a', { ports: [{ port: 4 }] }),
    ];
    expect(summary(build(services).snapshots[0])).toEqual([
      ['ns1/a', 'TCP', []],
      ['ns1/b:p', 'UDP', []],
      ['ns1/b:q', 'TCP', []],
      ['ns2/a:x', 'TCP', []],
    ]);
  });

  it('gives an IPv4 node one snapshot, and a second one only for services with IPv6 cluster IPs', () => {
    const v4only = build([makeService('ns', 'a', { clusterIP: '172.30.0.1' })]);
    expect(v4only.snapshots.map((s) => s.family)).toEqual(['IPv4']);
    const dual = build(
      [makeService('ns', 'a', { clusterIP: '172.30.0.1' }), makeService('ns', 'b', { clusterIPs: ['172.30.0.2', 'fd00:30::2'] })],
      [makeEndpointSlice('ns', 'b', { addresses: ['10.244.1.2'] }), makeEndpointSlice('ns', 'b', { addresses: ['fd00:10:244:1::2'] })],
    );
    expect(dual.snapshots.map((s) => [s.family, summary(s)])).toEqual([
      [
        'IPv4',
        [
          ['ns/a:p80', 'TCP', []],
          ['ns/b:p80', 'TCP', ['10.244.1.2:80']],
        ],
      ],
      ['IPv6', [['ns/b:p80', 'TCP', ['[fd00:10:244:1::2]:80']]]],
    ]);
  });

  it('puts the primary family first on an IPv6 node, and uses IPv4 while the node is unknown', () => {
    const v6node = makeNode('node-1', { addresses: ['fd00::11'] });
    const services = [makeService('ns', 'a', { clusterIP: 'fd00:30::1' }), makeService('ns', 'b', { clusterIP: '172.30.0.2' })];
    expect(build(services, [], { node: v6node }).snapshots.map((s) => s.family)).toEqual(['IPv6', 'IPv4']);
    expect(build([], [], { node: v6node }).snapshots.map((s) => s.family)).toEqual(['IPv6']);
    const unknown = build([], [], { node: null });
    expect(unknown.snapshots.map((s) => [s.family, s.node.known])).toEqual([['IPv4', false]]);
  });

  it('builds exactly the families asked for', () => {
    const services = [makeService('ns', 'a', { clusterIP: '172.30.0.1' })];
    expect(build(services, [], { families: ['IPv6', 'IPv4'] }).snapshots.map((s) => [s.family, s.services.length])).toEqual([
      ['IPv6', 0],
      ['IPv4', 1],
    ]);
  });

  it('reports each problem once even when both families see it, and keeps good services', () => {
    const { snapshots, problems } = build([
      makeService('ns', 'bad', { clusterIPs: ['172.30.0.1', 'fd00::1'], externalIPs: ['nonsense'] }),
      makeService('ns', 'broken', { ports: [{ name: 'p', port: 0 }] }),
      makeService('ns', 'good', { clusterIP: '172.30.0.3' }),
      { kind: 'Service', metadata: {} },
    ]);
    expect(problems.map(formatProblem)).toEqual([
      'Service ns/bad: spec.externalIPs[0]: not an IP address: "nonsense"; entry ignored',
      'Service ns/broken: spec.ports[0].port: must be an integer from 1 to 65535; got 0',
      'Service : metadata.name: missing',
    ]);
    expect(snapshots.map((s) => [s.family, s.services.map((st) => st.service.key)])).toEqual([
      ['IPv4', ['ns/bad:p80', 'ns/good:p80']],
      ['IPv6', ['ns/bad:p80']],
    ]);
  });

  it('uses the last definition of a service defined twice, and says so', () => {
    const { snapshots, problems } = build([makeService('ns', 'a', { clusterIP: '172.30.0.1' }), makeService('ns', 'a', { clusterIP: '172.30.0.2' })]);
    expect(snapshots[0]!.services.map((s) => s.service.clusterIP)).toEqual(['172.30.0.2']);
    expect(problems.map(formatProblem)).toEqual(['Service ns/a: defined more than once; the last definition is used']);
  });

  it('passes slice and node problems on', () => {
    const { problems } = build([], [makeEndpointSlice('ns', 'a', 's', { labels: { 'kubernetes.io/service-name': '' } })], {
      node: makeNode('node-1', { podCIDR: 'bad' }),
    });
    expect(problems.map(formatProblem)).toEqual([
      'Node node-1: spec.podCIDRs[0]: not a CIDR: "bad"; ignored',
      'EndpointSlice ns/s: metadata.labels["kubernetes.io/service-name"]: missing: the slice belongs to no service',
    ]);
  });
});

describe('servicePortStates', () => {
  it('derives the sorted states of one service for incremental rebuilds', () => {
    const ctx = {
      family: 'IPv4' as const,
      node: nodeInfoFrom(node, 'node-1').node,
      slices: indexEndpointSlices([
        makeEndpointSlice('ns', 'a', {
          addresses: ['10.244.1.2'],
          ports: [
            { name: 'b', port: 81 },
            { name: 'a', port: 80 },
          ],
        }),
      ]),
      features,
    };
    const { states, problems } = servicePortStates(
      makeService('ns', 'a', {
        ports: [
          { name: 'b', port: 81 },
          { name: 'a', port: 80 },
        ],
      }),
      ctx,
    );
    expect(problems).toEqual([]);
    expect(states.map((s) => [s.service.key, s.endpoints.map(endpointString), s.selection.hasAny])).toEqual([
      ['ns/a:a', ['10.244.1.2:80'], true],
      ['ns/a:b', ['10.244.1.2:81'], true],
    ]);
  });
});

describe('AllowServiceExternalIPs (upstream v1.36+, KEP-5707 #137293: the ServicePort reports no external IPs while the gate is off)', () => {
  const ext = () => makeService('ns', 'ext', { clusterIP: '172.30.0.9', externalIPs: ['192.168.99.10'] });
  const slice = () => makeEndpointSlice('ns', 'ext', { addresses: ['10.0.0.9'] });

  it('keeps the external IPs by default (the gate is on: deprecated stage, default true)', () => {
    const { snapshots } = build([ext()], [slice()]);
    expect(snapshots[0]?.services[0]?.service.externalIPs).toEqual(['192.168.99.10']);
  });

  it('drops them, in full builds and per-service rebuilds, when the gate is off', () => {
    const off = { preferSameTrafficDistribution: true, allowServiceExternalIPs: false };
    const full = buildSnapshots({ services: [ext()], slices: [slice()], node }, { nodeName: 'node-1', features: off });
    expect(full.snapshots[0]?.services[0]?.service).toMatchObject({ clusterIP: '172.30.0.9', externalIPs: [] });
    const ctx = { family: 'IPv4' as const, node: nodeInfoFrom(node, 'node-1').node, slices: indexEndpointSlices([slice()]), features: off };
    expect(servicePortStates(ext(), ctx).states[0]?.service.externalIPs).toEqual([]);
  });
});
