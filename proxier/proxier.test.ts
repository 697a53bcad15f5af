import { describe, expect, it } from 'vitest';
import { makeService } from '../test/builders.ts';
import type { ProxyMode } from './mode.ts';
import { indexEndpointSlices } from './endpoint-slices.ts';
import { nodeInfoFrom } from './node-info.ts';
import { Proxier, type StateBuilder } from './proxier.ts';
import { servicePortStates } from './snapshot.ts';
import { formatProblem, type ObjectProblem } from './types.ts';

const builder: StateBuilder = {
  node: (obj) => nodeInfoFrom(obj, 'node-1'),
  service: (svc, slices, node, family) => {
    const index = indexEndpointSlices(slices);
    const r = servicePortStates(svc, { family, node, slices: index, features: { preferSameTrafficDistribution: true } });
    return { states: r.states, problems: [...r.problems, ...index.problems] };
  },
};
const mode: ProxyMode = {
  name: 'iptables',
  families: ['IPv4', 'IPv6'],
  sync: async (s) => ({ family: s.family, full: true, durationMs: 0, objects: new Map(), written: new Map(), bytes: 0, noLocalEndpoints: null, conntrackDeleted: 0, failures: [] }),
  requestFullSync: () => undefined,
  monitor: () => () => undefined,
  close: async () => undefined,
};
const clock = { now: () => 0, setTimeout: () => 0, clearTimeout: () => undefined };

describe('Proxier problem reports', () => {
  it('reports each problem of a Service once, also one only a later IP family sees', () => {
    const problems: ObjectProblem[] = [];
    const proxier = new Proxier({ families: ['IPv4', 'IPv6'], mode, builder, clock, minSyncPeriodMs: 0, syncPeriodMs: 1000, hooks: { problem: (p) => problems.push(p) } });
    // No ipFamilies: upstream proxies spec.clusterIP (IPv4) only; the IPv6 entry is reported by the IPv6 pass.
    const svc = makeService('ns', 's', { clusterIPs: ['172.30.0.10', 'fd00::10'], spec: { ipFamilies: undefined }, ports: [{ name: 'ok', port: 80 }, { name: 'bad', port: 0 }] });
    proxier.onEvent({ type: 'add', kind: 'Service', key: 'ns/s', old: null, obj: svc });
    const snapshots = proxier.snapshots();
    expect(snapshots.map((s) => s.services.length)).toEqual([1, 0]);
    expect(problems.map(formatProblem)).toEqual([
      'Service ns/s: spec.ports[1].port: must be an integer from 1 to 65535; got 0',
      'Service ns/s: spec.clusterIPs[1]: fd00::10 not programmed: without spec.ipFamilies upstream proxies spec.clusterIP only',
    ]);
  });
});
