/**
 * /debug/services in generation B (upstream v1.36+, the default): objectsOfService names each endpoint's own objects
 * where B has no endpoint chain (no session affinity, no --traffic-counters): its entry in each policy chain's numgen
 * DNAT map (writeServiceToEndpointDNATs) and, for a local endpoint, its hairpin-connections element; the service's own
 * list keeps its chains and map keys. With endpoint chains (ClientIP affinity), and in generation A, the chain.
 */
import { describe, expect, it } from 'vitest';
import { makeEndpointSlice, makeService } from '../test/builders.ts';
import type { IPFamily } from '../proxier/types.ts';
import { objectsOfService, servicesByKey } from './inspect.ts';
import { endpointNames, servicePortNames } from './names.ts';
import { renderNftables, type NftRenderOptions } from './render.ts';
import { TEST_NODE, upstreamOptions, upstreamSnapshot } from './upstream.case.ts';

const slice = (ns: string, svc: string, endpoints: { ip: string; nodeName?: string }[]) =>
  makeEndpointSlice(ns, svc, { endpoints, ports: [{ name: 'p80', port: 80, protocol: 'TCP' }] });
const names = (ns: string, svc: string) => servicePortNames({ namespace: ns, name: svc, portName: 'p80', protocol: 'TCP' });

function objects(family: IPFamily, svc: unknown, endpoints: { ip: string; nodeName?: string }[], over: Partial<NftRenderOptions> = {}) {
  const meta = (svc as { metadata: { namespace: string; name: string } }).metadata;
  const snap = upstreamSnapshot(family, [svc], [slice(meta.namespace, meta.name, endpoints)]);
  const o = objectsOfService(servicesByKey(renderNftables(snap, upstreamOptions(family, over))), snap.services[0]!)!;
  return { service: o.service, endpoints: Object.fromEntries(o.endpoints) };
}

describe('objectsOfService in generation B (/debug/services)', () => {
  it("names each endpoint's DNAT map entry and a local one's hairpin-connections element, and keeps the service's list to its chains and map keys", () => {
    const svc = makeService('ns1', 'svc1', { clusterIP: '172.30.0.41' });
    const n = names('ns1', 'svc1');
    const o = objects('IPv4', svc, [{ ip: '10.180.0.1' }, { ip: '10.180.0.2', nodeName: TEST_NODE }]);
    expect(o.service).toEqual([n.service, 'cluster-ips[172.30.0.41]', 'service-ips[172.30.0.41 . tcp . 80]']);
    expect(o.endpoints).toEqual({
      '10.180.0.1:80': `${n.service} map[0]`,
      '10.180.0.2:80': `${n.service} map[1] hairpin-connections[10.180.0.2 . 10.180.0.2 . tcp . 80]`,
    });
  });

  it('IPv6, eTP Local: a local endpoint is in both the service- and the local- map', () => {
    const svc = makeService('ns2', 'svc2', {
      type: 'NodePort',
      externalTrafficPolicy: 'Local',
      clusterIP: 'fd00:10:96::42',
      ports: [{ name: 'p80', port: 80, nodePort: 3001 }],
    });
    const n = names('ns2', 'svc2');
    const o = objects('IPv6', svc, [{ ip: 'fd00:10::2' }, { ip: 'fd00:10::3', nodeName: TEST_NODE }]);
    expect(o.service).toContain(n.local);
    expect(o.service.join(' ')).not.toContain('hairpin-connections');
    expect(o.endpoints).toEqual({
      '[fd00:10::2]:80': `${n.service} map[0]`,
      '[fd00:10::3]:80': `${n.service} map[1] ${n.local} map[0] hairpin-connections[fd00:10::3 . fd00:10::3 . tcp . 80]`,
    });
  });

  it('ClientIP affinity: the endpoint chain, and the hairpin-connections element of a local endpoint', () => {
    const svc = makeService('ns5', 'svc5', { clusterIP: '172.30.0.45', sessionAffinity: 'ClientIP' });
    const sp = { namespace: 'ns5', name: 'svc5', portName: 'p80', protocol: 'TCP' } as const;
    const chain = (ip: string) => endpointNames(sp, { ip, port: 80 }).chain;
    const o = objects('IPv4', svc, [{ ip: '10.180.0.1' }, { ip: '10.180.0.3', nodeName: TEST_NODE }]);
    expect(o.endpoints).toEqual({
      '10.180.0.1:80': chain('10.180.0.1'),
      '10.180.0.3:80': `${chain('10.180.0.3')} hairpin-connections[10.180.0.3 . 10.180.0.3 . tcp . 80]`,
    });
  });

  it('generation A (upstream v1.33-1.35): the endpoint chain only', () => {
    const svc = makeService('ns1', 'svc1', { clusterIP: '172.30.0.41' });
    const sp = { namespace: 'ns1', name: 'svc1', portName: 'p80', protocol: 'TCP' } as const;
    const o = objects('IPv4', svc, [{ ip: '10.180.0.2', nodeName: TEST_NODE }], { generation: 'A' });
    expect(o.endpoints).toEqual({ '10.180.0.2:80': endpointNames(sp, { ip: '10.180.0.2', port: 80 }).chain });
  });
});
