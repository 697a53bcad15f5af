import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { renderRuleset, DEFAULT_RENDER_OPTIONS } from '../../iptables/render.ts';
import { toRestoreText } from '../../iptables/restore-text.ts';
import { buildSnapshots } from '../../proxier/snapshot.ts';
import { clusterArbitrary, FUZZ_NODE } from '../../test/cluster-arbitrary.ts';
import { makeEndpointSlice, makeNode, makeService } from '../../test/builders.ts';
import { measureInChild } from '../../test/retention-cluster.ts';
import type { ObjectKind } from './events.ts';
import { retainedFields } from './retained-fields.ts';

type Json = Record<string, unknown>;

/** What an API server adds that no proxier reads (upstream's informers keep it; we drop it). */
function withServerFields(obj: Json): Json {
  const md = obj['metadata'] as Json;
  const out: Json = {
    ...obj,
    metadata: {
      ...md,
      uid: 'u-1',
      creationTimestamp: '2026-01-01T00:00:00Z',
      generation: 3,
      ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name: 'x', uid: 'u-0' }],
      managedFields: [{ manager: 'kubectl', operation: 'Update', fieldsV1: { 'f:spec': {} } }],
      annotations: { ...(md['annotations'] as Json), 'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify(obj) },
    },
  };
  if (Array.isArray(obj['endpoints']))
    out['endpoints'] = obj['endpoints'].map((e) => (typeof e === 'object' && e ? { ...e, targetRef: { kind: 'Pod', name: 'p' }, hostname: 'h' } : e));
  if (obj['kind'] === 'Node')
    out['status'] = { ...(obj['status'] as Json), images: [{ names: ['img'], sizeBytes: 1 }], conditions: [{ type: 'Ready' }] };
  return out;
}

const kindOf = (o: Json): ObjectKind => o['kind'] as ObjectKind;

function rendered(objects: readonly Json[]): { text: string[]; problems: unknown } {
  const { snapshots, problems } = buildSnapshots(
    {
      services: objects.filter((o) => o['kind'] === 'Service'),
      slices: objects.filter((o) => o['kind'] === 'EndpointSlice'),
      node: objects.find((o) => o['kind'] === 'Node') ?? null,
    },
    { nodeName: FUZZ_NODE.name, features: { preferSameTrafficDistribution: true }, families: ['IPv4', 'IPv6'] },
  );
  const options = {
    ...DEFAULT_RENDER_OPTIONS,
    detectLocal: { mode: 'ClusterCIDR' as const, clusterCIDRs: ['10.244.0.0/16'], bridgeInterface: '', interfaceNamePrefix: '' },
  };
  return { text: snapshots.map((s) => toRestoreText(renderRuleset(s, options).ruleset)), problems };
}

describe('retainedFields', () => {
  it('keeps what the proxier reads and drops managedFields, owner references, last-applied, targetRefs and Node status but addresses', () => {
    const svc = withServerFields(
      makeService('ns', 's', { clusterIP: '10.0.0.1', ports: [{ name: 'p', port: 80 }], metadata: { annotations: { a: 'b' } } }),
    );
    const kept = retainedFields('Service', svc);
    expect(kept['metadata']).toEqual({ name: 's', namespace: 'ns', uid: 'u-1', annotations: { a: 'b' } });
    expect(kept['spec']).toEqual(svc['spec']);
    const slice = retainedFields(
      'EndpointSlice',
      withServerFields(makeEndpointSlice('ns', 's', 's-1', { endpoints: [{ ip: '10.1.1.1', nodeName: 'n' }], ports: [{ name: 'p', port: 80 }] })),
    );
    expect((slice['endpoints'] as Json[])[0]).toEqual({
      addresses: ['10.1.1.1'],
      conditions: { ready: true, serving: true, terminating: false },
      nodeName: 'n',
    });
    const node = retainedFields('Node', withServerFields(makeNode('n', { addresses: ['192.168.0.2'], podCIDR: '10.244.1.0/24' })));
    expect(node['status']).toEqual({
      addresses: [
        { type: 'InternalIP', address: '192.168.0.2' },
        { type: 'Hostname', address: 'n' },
      ],
    });
    expect(node['spec']).toEqual({ podCIDR: '10.244.1.0/24', podCIDRs: ['10.244.1.0/24'] });
  });

  it('returns a fresh object: changing the input later does not change what was kept', () => {
    const svc = makeService('ns', 's', { clusterIP: '10.0.0.1', ports: [{ name: 'p', port: 80 }] });
    const kept = retainedFields('Service', svc);
    ((svc['spec'] as Json)['ports'] as Json[])[0]!['port'] = 81;
    expect(((kept['spec'] as Json)['ports'] as Json[])[0]!['port']).toBe(80);
  });

  it('changes no rule and no reported problem (upstream reads the same fields: servicechangetracker.go, endpointslicecache.go)', () => {
    fc.assert(
      fc.property(clusterArbitrary, (c) => {
        const full = (c.objects as Json[]).filter((o) => typeof o === 'object' && o !== null && typeof o['kind'] === 'string').map(withServerFields);
        const kept = full.map((o) => retainedFields(kindOf(o), o));
        expect(rendered(kept)).toEqual(rendered(full));
      }),
      { numRuns: 150 },
    );
  });

  it('shares what objects repeat: one frozen conditions object per combination (an API server sends a copy per endpoint)', () => {
    const slice = (name: string, ip: string, ready: boolean) =>
      retainedFields(
        'EndpointSlice',
        JSON.parse(JSON.stringify(makeEndpointSlice('ns', 'svc', name, { endpoints: [{ ip, ready }], ports: [{ name: 'p', port: 80 }] }))) as Json,
      );
    const conditions = (o: Json) => (o['endpoints'] as Json[])[0]!['conditions'] as Json;
    const [a, b, c] = [slice('a', '10.0.0.1', true), slice('b', '10.0.0.2', true), slice('c', '10.0.0.3', false)];
    expect(conditions(a)).toBe(conditions(b));
    expect(Object.isFrozen(conditions(a))).toBe(true);
    expect(conditions(c)).not.toBe(conditions(a));
    expect(conditions(c)['ready']).toBe(false);
  });

  it('keeps a Service and its 5-endpoint slice in under 1.9 KB: one JSON copy, repeated strings and conditions shared (was ~2.1 KB)', async () => {
    const { perService } = await measureInChild<{ perService: number }>(
      2000,
      [`import { retainedFields } from 'src/sources/retained-fields.ts';`],
      `const texts = [...cluster.services, ...cluster.slices].map((o) => JSON.stringify(o));
const before = heap();
const kept = texts.map((t) => { const o = JSON.parse(t); return retainedFields(o.kind, o); });
const after = heap();
console.log(JSON.stringify({ perService: (after - before) / n, kept: kept.length }));`,
    );
    // Measured on Node 24: ~2,100 bytes with each field copied on its own (objects built field by field, a string
    // per object for apiVersion and the controller's label, a conditions object per endpoint), ~1,710 since.
    expect(perService).toBeLessThan(1900);
  }, 60_000);
});
