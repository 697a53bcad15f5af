import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { diffTables, isEmptyDiff } from './diff.ts';
import { findChain, findSet } from './model.ts';
import { ListParseError, parseNftJson } from './parse-json.ts';
import { renderNftables, tableOf } from './render.ts';
import { shapesOptions, shapesSnapshot } from './shapes.case.ts';

const listing = (f: string) => readFileSync(new URL(`./testdata/${f}`, import.meta.url), 'utf8');

describe('nft -j list table (nft 1.0.6 output)', () => {
  // The generation B listings are what nft 1.0.6 listed after loading the B render of the same cluster (Linux 6.18).
  for (const [family, nftFamily, file, generation] of [
    ['IPv4', 'ip', 'ipv4-listing.json', 'A'],
    ['IPv6', 'ip6', 'ipv6-listing.json', 'A'],
    ['IPv4', 'ip', 'ipv4-listing-b.json', 'B'],
    ['IPv6', 'ip6', 'ipv6-listing-b.json', 'B'],
  ] as const) {
    it(`reads back exactly the ${family} generation ${generation} table that was loaded (every rule shape, after normalising both sides)`, () => {
      const live = parseNftJson(listing(file), nftFamily)!;
      const desired = tableOf(renderNftables(shapesSnapshot(family), { ...shapesOptions(family), generation }));
      const d = diffTables(desired, live);
      expect(isEmptyDiff(d), JSON.stringify(d, null, 1)).toBe(true);
    });

    it(`notices a difference in the ${family} generation ${generation} table: a rule, an element, a chain`, () => {
      const live = parseNftJson(listing(file), nftFamily)!;
      const base = renderNftables(shapesSnapshot(family), { ...shapesOptions(family), generation });
      const desired = tableOf(base);
      const damaged = {
        ...live,
        chains: live.chains.filter((c) => c.name !== 'reject-chain').map((c) => (c.name === 'masquerading' ? { ...c, rules: c.rules.slice(1) } : c)),
        sets: live.sets.map((s) => (s.name === 'cluster-ips' ? { ...s, elements: s.elements!.slice(1) } : s)),
      };
      const d = diffTables(desired, damaged);
      expect(d.missingChains).toEqual(['reject-chain']);
      expect(d.chains.map((c) => [c.chain, c.missing.length, c.extra.length])).toEqual([['masquerading', 1, 0]]);
      expect(d.sets.map((s) => [s.set, s.missing.length])).toEqual([['cluster-ips', 1]]);
    });
  }

  it("reads elements with comments, verdict maps, and leaves affinity sets' contents out", () => {
    const t = parseNftJson(listing('ipv4-listing.json'), 'ip')!;
    expect(findSet(t, 'no-endpoint-services')!.elements).toContainEqual({
      key: '172.30.0.46 . tcp . 80',
      value: 'goto reject-chain',
      comment: 'ns1/empty:p80',
    });
    expect(findSet(t, 'service-ips')!.type).toBe('ipv4_addr . inet_proto . inet_service : verdict');
    const aff = t.sets.filter((s) => s.name.startsWith('affinity-'));
    expect(aff).toHaveLength(2);
    expect(aff.every((s) => s.elements === null && s.timeout === 600)).toBe(true);
    expect(findChain(t, 'nat-prerouting')!.base).toEqual({ type: 'nat', hook: 'prerouting', priority: -100 });
  });

  it("keeps a base chain's policy drop (set from outside), and leaves the accept every base chain lists out, as the render does", () => {
    // The default generation's (B) listing, compared with the default render.
    const text = listing('ipv4-listing-b.json').replace(/("name":"filter-forward",[^}]*"policy":)"accept"/, (_, head: string) => `${head}"drop"`);
    expect(text).not.toBe(listing('ipv4-listing-b.json'));
    const t = parseNftJson(text, 'ip')!;
    expect(findChain(t, 'filter-forward')!.base).toEqual({ type: 'filter', hook: 'forward', priority: 0, policy: 'drop' });
    expect(findChain(t, 'filter-input')!.base).toEqual({ type: 'filter', hook: 'input', priority: 0 });
    const d = diffTables(tableOf(renderNftables(shapesSnapshot('IPv4'), shapesOptions('IPv4'))), t);
    expect(d.chains.map((c) => [c.chain, c.base])).toEqual([
      [
        'filter-forward',
        { desired: { type: 'filter', hook: 'forward', priority: 0 }, live: { type: 'filter', hook: 'forward', priority: 0, policy: 'drop' } },
      ],
    ]);
  });

  it('returns null for a listing without the table, and refuses other JSON schemas and non-JSON', () => {
    expect(parseNftJson('{"nftables":[{"metainfo":{"json_schema_version":1}}]}', 'ip')).toBeNull();
    expect(() => parseNftJson('{"nftables":[{"metainfo":{"json_schema_version":2}}]}', 'ip')).toThrow(/schema version 2/);
    expect(() => parseNftJson('table ip kube-proxy {', 'ip')).toThrow(ListParseError);
  });
});
