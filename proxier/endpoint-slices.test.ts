import { describe, expect, it } from 'vitest';
import { makeEndpointSlice, makeService } from '../test/builders.ts';
import { endpointsFor, indexEndpointSlices, mergeEndpoints, parseEndpointSlice } from './endpoint-slices.ts';
import { servicePortsFor } from './service-ports.ts';
import { endpointString, formatProblem } from './types.ts';
import type { IPFamily, ServicePort } from './types.ts';

const port = (over: { portName?: string; protocol?: 'TCP' | 'UDP'; family?: IPFamily } = {}): ServicePort => {
  const family = over.family ?? 'IPv4';
  const svc = makeService('ns1', 'svc1', {
    clusterIP: family === 'IPv4' ? '172.30.0.41' : 'fd00:30::41',
    ports: [{ name: over.portName ?? 'p80', port: 80, protocol: over.protocol ?? 'TCP' }],
  });
  return servicePortsFor(svc, family).ports[0]!;
};
const ctx = { nodeName: 'test-node', family: 'IPv4' as IPFamily };
const keys = (eps: readonly { ip: string; port: number }[]) => eps.map(endpointString);

describe('endpointsFor', () => {
  it('reads conditions as upstream: ready and serving default to true, terminating to false', () => {
    const slice = makeEndpointSlice('ns1', 'svc1', {
      endpoints: [
        { ip: '10.180.0.1', conditions: {} },
        { ip: '10.180.0.2', conditions: { ready: false, serving: true, terminating: true } },
        { ip: '10.180.0.3', conditions: { ready: false } },
      ],
    });
    const { endpoints, problems } = endpointsFor([slice], port(), ctx);
    expect(problems).toEqual([]);
    expect(endpoints.map((e) => [e.ip, e.ready, e.serving, e.terminating])).toEqual([
      ['10.180.0.1', true, true, false],
      ['10.180.0.2', false, true, true],
      ['10.180.0.3', false, true, false],
    ]);
  });

  it('pairs each endpoint with the slice port matching name and protocol', () => {
    const slice = makeEndpointSlice('ns1', 'svc1', {
      addresses: ['10.180.0.1'],
      ports: [
        { name: 'p80', port: 8080 },
        { name: 'p80', port: 8081, protocol: 'UDP' },
        { name: 'other', port: 9090 },
      ],
    });
    expect(keys(endpointsFor([slice], port(), ctx).endpoints)).toEqual(['10.180.0.1:8080']);
    expect(keys(endpointsFor([slice], port({ protocol: 'UDP' }), ctx).endpoints)).toEqual(['10.180.0.1:8081']);
  });

  it('ignores slice ports whose name is absent or null, naming them; "" is the unnamed port (upstream EndpointSliceCache.endpointInfoByServicePort)', () => {
    const slice = makeEndpointSlice('ns1', 'svc1', 's1', {
      addresses: ['10.180.0.1'],
      ports: [{ port: 80 }, { name: null, port: 81 }, { name: '', port: 82 }],
    });
    const r = endpointsFor([slice], port({ portName: '' }), ctx);
    expect(keys(r.endpoints)).toEqual(['10.180.0.1:82']);
    expect(r.problems.map(formatProblem)).toEqual([
      'EndpointSlice ns1/s1: ports[0].name: missing (null); upstream ignores slice ports without a name ("" is the unnamed port)',
      'EndpointSlice ns1/s1: ports[1].name: missing (null); upstream ignores slice ports without a name ("" is the unnamed port)',
    ]);
  });

  it('ignores slice ports without a number, naming them (upstream endpointInfoByServicePort: "Ignoring invalid endpoint port")', () => {
    const slice = makeEndpointSlice('ns1', 'svc1', 's1', {
      addresses: ['10.180.0.1'],
      ports: [
        { name: '', port: 80 },
        { name: '', port: null },
        { name: '', port: 0 },
      ],
    });
    const r = endpointsFor([slice], port({ portName: '' }), ctx);
    expect(keys(r.endpoints)).toEqual(['10.180.0.1:80']);
    expect(r.problems.map(formatProblem)).toEqual([
      'EndpointSlice ns1/s1: ports[1].port: missing (null or 0); upstream ignores slice ports without a number',
      'EndpointSlice ns1/s1: ports[2].port: missing (null or 0); upstream ignores slice ports without a number',
    ]);
  });

  it('merges slices of the service only, in this family only, sorted by ip:port', () => {
    const slices = [
      makeEndpointSlice('ns1', 'svc1', 'a', { addresses: ['10.180.0.10', '10.180.0.2'] }),
      makeEndpointSlice('ns1', 'svc1', 'b', { addresses: ['10.180.0.1'] }),
      makeEndpointSlice('ns1', 'svc1', 'c', { addresses: ['fd00::1'] }),
      makeEndpointSlice('ns1', 'svc1', 'd', { addressType: 'FQDN', endpoints: [{ addresses: ['example.com'] }] }),
      makeEndpointSlice('ns1', 'svc2', 'e', { addresses: ['10.180.0.3'] }),
      makeEndpointSlice('ns2', 'svc1', 'f', { addresses: ['10.180.0.4'] }),
    ];
    const r = endpointsFor(slices, port(), ctx);
    expect(r.problems).toEqual([]);
    // Plain string order of "ip:port", as upstream sorts (so ".10:" before ".1:").
    expect(keys(r.endpoints)).toEqual(['10.180.0.10:80', '10.180.0.1:80', '10.180.0.2:80']);
    expect(keys(endpointsFor(slices, port({ family: 'IPv6' }), { ...ctx, family: 'IPv6' }).endpoints)).toEqual(['[fd00::1]:80']);
  });

  it('normalises addresses (leading zeros, IPv6 case) and keeps node, zone and hints', () => {
    const slice = makeEndpointSlice('ns1', 'svc1', {
      endpoints: [
        { ip: '010.180.000.001', nodeName: 'test-node', zone: 'zone-a', zoneHints: ['zone-a'], nodeHints: ['test-node'] },
        { ip: '10.180.0.2', nodeName: 'other' },
      ],
    });
    const eps = endpointsFor([slice], port(), ctx).endpoints;
    expect(eps[0]).toEqual({
      ip: '10.180.0.1',
      port: 80,
      ready: true,
      serving: true,
      terminating: false,
      nodeName: 'test-node',
      zone: 'zone-a',
      isLocal: true,
      zoneHints: ['zone-a'],
      nodeHints: ['test-node'],
    });
    expect(eps[1]).toMatchObject({ ip: '10.180.0.2', isLocal: false, zone: null, zoneHints: null, nodeHints: null });
    const v6 = makeEndpointSlice('ns1', 'svc1', { addresses: ['FD00:0:0::0001'] });
    expect(keys(endpointsFor([v6], port({ family: 'IPv6' }), { ...ctx, family: 'IPv6' }).endpoints)).toEqual(['[fd00::1]:80']);
  });

  it('is never local when the node name is unknown', () => {
    const slice = makeEndpointSlice('ns1', 'svc1', { endpoints: [{ ip: '10.180.0.1' }] });
    expect(endpointsFor([slice], port(), { nodeName: '', family: 'IPv4' }).endpoints[0]?.isLocal).toBe(false);
  });

  it('de-duplicates an endpoint seen in two slices: non-terminating first, then local, then first slice by name', () => {
    const dup = (name: string, e: Record<string, unknown>) => makeEndpointSlice('ns1', 'svc1', name, { endpoints: [{ ip: '10.180.0.1', ...e }] });
    const pick = (...slices: unknown[]) => endpointsFor(slices, port(), ctx).endpoints;
    expect(pick(dup('a', { terminating: true, ready: false }), dup('b', { nodeName: 'x' }))).toMatchObject([{ terminating: false, nodeName: 'x' }]);
    expect(pick(dup('b', { nodeName: 'x' }), dup('a', { terminating: true, ready: false }))).toMatchObject([{ terminating: false, nodeName: 'x' }]);
    expect(pick(dup('a', { nodeName: 'x' }), dup('b', { nodeName: 'test-node' }))).toMatchObject([{ isLocal: true }]);
    expect(pick(dup('b', { zone: 'z-b' }), dup('a', { zone: 'z-a' }))).toMatchObject([{ zone: 'z-a' }]);
  });
});

describe('parseEndpointSlice problems', () => {
  const text = (obj: unknown) => parseEndpointSlice(obj).problems.map(formatProblem);

  it('names slices that belong to no service or have a bad address type', () => {
    const orphan = makeEndpointSlice('ns1', 'svc1', 's1', { labels: { 'kubernetes.io/service-name': '' } });
    expect(text(orphan)).toEqual(['EndpointSlice ns1/s1: metadata.labels["kubernetes.io/service-name"]: missing: the slice belongs to no service']);
    expect(text(makeEndpointSlice('ns1', 'svc1', 's1', { addressType: 'IPv5' }))).toEqual([
      'EndpointSlice ns1/s1: addressType: must be IPv4, IPv6 or FQDN; got "IPv5"',
    ]);
    expect(text({ metadata: { namespace: 'ns1' } })).toEqual(['EndpointSlice ns1/: metadata.name: missing']);
  });

  it('skips bad endpoints and ports only, naming each', () => {
    const slice = makeEndpointSlice('ns1', 'svc1', 's1', {
      endpoints: [{ ip: '10.0.0.1' }, { ip: 'nope' }, { ip: 'fd00::1' }, { addresses: [] }],
      ports: [
        { name: 'p80', port: 80 },
        { name: 'bad', port: 99999 },
        { name: 'icmp', port: 1, protocol: 'ICMP' },
      ],
    });
    const { slice: parsed, problems } = parseEndpointSlice(slice);
    expect(parsed?.endpoints.map((e) => e.ip)).toEqual(['10.0.0.1']);
    expect(parsed?.ports).toEqual([{ name: 'p80', protocol: 'TCP', port: 80 }]);
    expect(problems.map(formatProblem)).toEqual([
      'EndpointSlice ns1/s1: ports[1].port: must be an integer from 1 to 65535; got 99999',
      'EndpointSlice ns1/s1: ports[2].protocol: must be TCP, UDP or SCTP; got "ICMP"',
      'EndpointSlice ns1/s1: endpoints[1].addresses[0]: not an IP address: "nope"',
      'EndpointSlice ns1/s1: endpoints[2].addresses[0]: fd00::1 is not an IPv4 address (addressType is IPv4)',
      'EndpointSlice ns1/s1: endpoints[3].addresses: must be a non-empty list; got []',
    ]);
  });
});

describe('indexEndpointSlices', () => {
  it('groups slices by namespace/service and lets a redefined slice replace the earlier one', () => {
    const index = indexEndpointSlices([
      makeEndpointSlice('ns1', 'svc1', 's1', { addresses: ['10.0.0.1'] }),
      makeEndpointSlice('ns1', 'svc2', 's2', { addresses: ['10.0.0.2'] }),
      makeEndpointSlice('ns1', 'svc1', 's1', { addresses: ['10.0.0.3'] }),
      'garbage',
    ]);
    expect(index.forService('ns1/svc1').map((s) => s.endpoints[0]?.ip)).toEqual(['10.0.0.3']);
    expect(index.forService('ns1/svc2')).toHaveLength(1);
    expect(index.forService('ns9/none')).toEqual([]);
    expect(index.problems.map(formatProblem)).toEqual([
      'EndpointSlice ns1/s1: defined more than once; the last definition is used',
      'EndpointSlice : not an object (got "garbage")',
    ]);
    expect(keys(mergeEndpoints(index.forService('ns1/svc1'), port(), ctx))).toEqual(['10.0.0.3:80']);
  });
});
