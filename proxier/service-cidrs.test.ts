/**
 * ServiceCIDR objects -> the Service CIDRs of each family (upstream
 * ServiceCIDRConfig.handleServiceCIDREvent and the nftables proxier's
 * OnServiceCIDRsChanged, which splits them by family).
 */
import { describe, expect, it } from 'vitest';
import { makeServiceCIDR } from '../test/builders.ts';
import { serviceCIDRsFrom } from './service-cidrs.ts';
import { formatProblem } from './types.ts';

describe('serviceCIDRsFrom (upstream handleServiceCIDREvent + nftables OnServiceCIDRsChanged)', () => {
  it('splits a dual-stack ServiceCIDR by family, as OnServiceCIDRsChanged filters with IsIPv4CIDRString', () => {
    const r = serviceCIDRsFrom([makeServiceCIDR('kubernetes', ['10.96.0.0/12', 'fd00:10:96::/112'])]);
    expect(r.cidrs).toEqual({ IPv4: ['10.96.0.0/12'], IPv6: ['fd00:10:96::/112'] });
    expect(r.problems).toEqual([]);
  });

  it('takes the union over every object, once each and sorted: a CIDR two objects list stays while one of them does', () => {
    const both = [makeServiceCIDR('kubernetes', ['10.96.0.0/12']), makeServiceCIDR('extra', ['10.200.0.0/16', '10.96.0.0/12'])];
    expect(serviceCIDRsFrom(both).cidrs.IPv4).toEqual(['10.200.0.0/16', '10.96.0.0/12']);
    // Upstream's set deletes "extra"'s CIDRs when it goes, 10.96.0.0/12 included, though "kubernetes" still has it.
    expect(serviceCIDRsFrom([both[0]]).cidrs.IPv4).toEqual(['10.96.0.0/12']);
    expect(serviceCIDRsFrom([]).cidrs).toEqual({ IPv4: [], IPv6: [] });
  });

  it('names and skips what is not a CIDR (upstream would write it into the ip6 rule and every transaction would fail)', () => {
    const r = serviceCIDRsFrom([
      makeServiceCIDR('bad', ['10.96.0.0', 'nonsense/8', '10.300.0.0/16', '10.1.0.0/33', ' 10.2.0.0/16', 'fd00::/129', '10.3.0.0/16']),
      { metadata: { name: 'no-spec' } },
      { metadata: { name: 'odd' }, spec: { cidrs: '10.4.0.0/16' } },
      { metadata: { name: 'number' }, spec: { cidrs: [42] } },
    ]);
    expect(r.cidrs).toEqual({ IPv4: ['10.3.0.0/16'], IPv6: [] });
    expect(r.problems.map(formatProblem)).toEqual([
      'ServiceCIDR bad: spec.cidrs[0]: not a CIDR: "10.96.0.0"; ignored',
      'ServiceCIDR bad: spec.cidrs[1]: not a CIDR: "nonsense/8"; ignored',
      'ServiceCIDR bad: spec.cidrs[2]: not a CIDR: "10.300.0.0/16"; ignored',
      'ServiceCIDR bad: spec.cidrs[3]: not a CIDR: "10.1.0.0/33"; ignored',
      'ServiceCIDR bad: spec.cidrs[4]: not a CIDR: " 10.2.0.0/16"; ignored',
      'ServiceCIDR bad: spec.cidrs[5]: not a CIDR: "fd00::/129"; ignored',
      'ServiceCIDR no-spec: spec: must be an object, got nothing',
      'ServiceCIDR odd: spec.cidrs: must be a list, got "10.4.0.0/16"',
      'ServiceCIDR number: spec.cidrs[0]: not a CIDR: 42; ignored',
    ]);
  });

  it('uses the canonical network of a CIDR with host bits set or upper case, and names it (the API server refuses such a CIDR)', () => {
    const r = serviceCIDRsFrom([makeServiceCIDR('sloppy', ['10.96.0.1/12', 'FD00:10:96::1/112'])]);
    expect(r.cidrs).toEqual({ IPv4: ['10.96.0.0/12'], IPv6: ['fd00:10:96::/112'] });
    expect(r.problems.map(formatProblem)).toEqual([
      'ServiceCIDR sloppy: spec.cidrs[0]: 10.96.0.1/12 is not in canonical form; using 10.96.0.0/12',
      'ServiceCIDR sloppy: spec.cidrs[1]: FD00:10:96::1/112 is not in canonical form; using fd00:10:96::/112',
    ]);
  });
});
