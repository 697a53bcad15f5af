import { describe, expect, it } from 'vitest';
import type { Protocol } from '../proxier/types.ts';
import { makeEndpointSlice, makeService } from '../test/builders.ts';
import { FIXED_GROUP, formatNftDiff, reportTableDiff, UNOWNED_GROUP } from './diff-report.ts';
import type { NftTable } from './model.ts';
import { endpointNames, serviceOfName, servicePortNames } from './names.ts';
import { renderNftables, tableOf } from './render.ts';
import { TEST_NODE, upstreamOptions, upstreamSnapshot } from './upstream.case.ts';

const sp = (name: string, portName = 'p80', protocol: Protocol = 'TCP') => ({ namespace: 'ns1', name, portName, protocol });

describe('serviceOfName', () => {
  it('reads the service port back from every per-service name (upstream servicePortChainNameBase / EndpointChainNameBase)', () => {
    const names = servicePortNames(sp('svc1'));
    for (const n of Object.values(names)) expect(serviceOfName(n)).toBe('ns1/svc1:p80/TCP');
    const ep = endpointNames(sp('dns', 'dns', 'UDP'), { ip: 'fd00:10::1', port: 53 });
    expect(serviceOfName(ep.chain)).toBe('ns1/dns:dns/UDP');
    expect(serviceOfName(ep.affinitySet)).toBe('ns1/dns:dns/UDP');
    expect(serviceOfName(servicePortNames(sp('unnamed', '')).service)).toBe('ns1/unnamed/TCP');
  });

  it('gives up on fixed chains and on names hashAndTruncate cut short', () => {
    expect(serviceOfName('services')).toBeNull();
    expect(serviceOfName('mark-for-masquerade')).toBeNull();
    expect(serviceOfName(servicePortNames(sp('x'.repeat(250))).service)).toBeNull();
  });
});

describe('reportTableDiff', () => {
  const render = renderNftables(
    upstreamSnapshot(
      'IPv4',
      [makeService('ns1', 'svc1', { clusterIP: '172.30.0.41', ports: [{ name: 'p80', port: 80 }] })],
      [makeEndpointSlice('ns1', 'svc1', { endpoints: [{ ip: '10.180.0.1' }], ports: [{ name: 'p80', port: 80, protocol: 'TCP' }] })],
    ),
    upstreamOptions('IPv4'),
  );
  const desired = tableOf(render);
  // The same service with its endpoint on this node: generation B writes its hairpin-connections element.
  const localRender = renderNftables(
    upstreamSnapshot(
      'IPv4',
      [makeService('ns1', 'svc1', { clusterIP: '172.30.0.41', ports: [{ name: 'p80', port: 80 }] })],
      [
        makeEndpointSlice('ns1', 'svc1', {
          endpoints: [{ ip: '10.180.0.1', nodeName: TEST_NODE }],
          ports: [{ name: 'p80', port: 80, protocol: 'TCP' }],
        }),
      ],
    ),
    upstreamOptions('IPv4'),
  );

  it('is identical for the render itself', () => {
    const r = reportTableDiff(render, desired);
    expect(r.identical).toBe(true);
    expect(formatNftDiff(r, 'IPv4')).toMatch(/^IPv4: converged: table ip kube-proxy/);
  });

  it('counts a flushed per-service chain the kernel still has as awaiting deletion, not as drift; a stale chain with rules is drift', () => {
    const stale = { name: 'endpoint-AAAAAAAA-ns1/old/tcp/p80__10.180.0.9/80', base: null, comment: null, rules: [] };
    const pending = reportTableDiff(render, { ...desired, chains: [...desired.chains, stale] });
    expect(pending.identical).toBe(true);
    expect(pending.awaitingDeletion).toEqual([stale.name]);
    expect(formatNftDiff(pending, 'IPv4')).toBe(
      'IPv4: converged: table ip kube-proxy holds exactly the desired chains, rules, sets and elements; ' +
        `1 stale per-service chains, flushed, await deletion at a later sync (${stale.name})\n`,
    );
    const used = reportTableDiff(render, { ...desired, chains: [...desired.chains, { ...stale, rules: ['ip daddr 10.180.0.9 drop'] }] });
    expect(used.identical).toBe(false);
    expect(used.awaitingDeletion).toEqual([]);
    // A chain that is not a per-service one is foreign, even when empty.
    expect(reportTableDiff(render, { ...desired, chains: [...desired.chains, { ...stale, name: 'someone-elses' }] }).identical).toBe(false);
  });

  it('counts a hairpin-connections element nothing wants as awaiting deletion, not as drift (generation B: a local endpoint went, the stale cleanup deletes it); a missing one is drift', () => {
    const hairpin = desired.sets.find((s) => s.name === 'hairpin-connections')!;
    const gone = { key: '10.180.0.9 . 10.180.0.9 . tcp . 80', value: null, comment: null };
    const live = { ...desired, sets: desired.sets.map((s) => (s === hairpin ? { ...s, elements: [...(s.elements ?? []), gone] } : s)) };
    const pending = reportTableDiff(render, live);
    expect(pending.identical).toBe(true);
    expect(pending.awaitingElements).toEqual([`hairpin-connections { ${gone.key} }`]);
    expect(formatNftDiff(pending, 'IPv4')).toBe(
      'IPv4: converged: table ip kube-proxy holds exactly the desired chains, rules, sets and elements; ' +
        `1 stale set elements await deletion at a later sync (hairpin-connections { ${gone.key} })\n`,
    );
    // The service's own element missing is drift, reported under it.
    const local = reportTableDiff(localRender, {
      ...tableOf(localRender),
      sets: tableOf(localRender).sets.map((s) => (s.name === 'hairpin-connections' ? { ...s, elements: [] } : s)),
    });
    expect(local.identical).toBe(false);
    expect(local.awaitingElements).toEqual([]);
    expect(local.groups.map((g) => g.title)).toEqual(['ns1/svc1:p80/TCP']);
  });

  it('puts a base chain with another priority under the fixed objects', () => {
    const live: NftTable = {
      ...desired,
      chains: desired.chains.map((c) => (c.name === 'filter-input' ? { ...c, base: { type: 'filter', hook: 'input', priority: 10 } } : c)),
    };
    const r = reportTableDiff(render, live);
    expect(r.groups).toEqual([
      {
        title: FIXED_GROUP,
        changes: [
          {
            kind: 'chain',
            name: 'filter-input',
            what: 'priority differs',
            lines: ['+ type filter hook input priority 0', '- type filter hook input priority 10'],
          },
        ],
      },
    ]);
  });

  it('reports a base chain given policy drop from outside, or re-created at another hook and priority (what the damage check, changedBaseChains, notices)', () => {
    const live: NftTable = {
      ...desired,
      chains: desired.chains.map((c) =>
        c.name === 'filter-forward'
          ? { ...c, base: { type: 'filter', hook: 'forward', priority: 0, policy: 'drop' } }
          : c.name === 'nat-prerouting'
            ? { ...c, base: { type: 'nat', hook: 'input', priority: 10 } }
            : c,
      ),
    };
    const r = reportTableDiff(render, live);
    expect(r.identical).toBe(false);
    expect(formatNftDiff(r, 'IPv4')).toBe(
      [
        'IPv4 (table ip kube-proxy): 2 objects differ',
        `  ${FIXED_GROUP}`,
        '    chain filter-forward: policy differs',
        '      + type filter hook forward priority 0',
        '      - type filter hook forward priority 0 policy drop',
        '    chain nat-prerouting: hook and priority differ',
        '      + type nat hook prerouting priority -100',
        '      - type nat hook input priority 10',
        '',
      ].join('\n'),
    );
  });

  it('attributes a missing element to its service and an unknown chain to nobody', () => {
    const live: NftTable = {
      ...desired,
      chains: [...desired.chains, { name: 'leftover', base: null, comment: null, rules: [] }],
      sets: desired.sets.map((s) => (s.name === 'service-ips' ? { ...s, elements: [] } : s)),
    };
    const r = reportTableDiff(render, live);
    expect(r.groups.map((g) => g.title)).toEqual(['ns1/svc1:p80/TCP', UNOWNED_GROUP]);
    expect(r.groups[0]!.changes[0]).toEqual({
      kind: 'map',
      name: 'service-ips',
      what: '1 missing, 0 unexpected, 0 changed elements',
      lines: [`+ 172.30.0.41 . tcp . 80 : goto ${servicePortNames(sp('svc1')).service}`],
    });
  });
});
