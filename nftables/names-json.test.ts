import { describe, expect, it, vi } from 'vitest';
import { chainsIn, namesIn } from './parse-json.ts';

/** As JSON.stringify writes it (no blanks). */
const compact = JSON.stringify({
  nftables: [
    { metainfo: { json_schema_version: 1 } },
    { table: { family: 'ip', name: 'kube-proxy', handle: 1 } },
    { table: { family: 'ip', name: 'other', handle: 2 } },
    { chain: { family: 'ip', table: 'kube-proxy', name: 'services', handle: 3 } },
    { chain: { family: 'ip', table: 'other', name: 'services', handle: 4 } },
    { chain: { family: 'ip6', table: 'kube-proxy', name: 'masquerading', handle: 5 } },
    { set: { family: 'ip', table: 'kube-proxy', name: 'cluster-ips', handle: 6 } },
  ],
});

/** As nft 1.0.6 prints `nft -t -j list chains ip` and `list maps ip` (keys in its order, ", " and ": "). */
const NFT_CHAINS =
  '{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, ' +
  '{"chain": {"family": "ip", "table": "kube-proxy", "name": "filter-input", "handle": 3, "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}}, ' +
  '{"chain": {"family": "ip", "table": "kube-proxy", "name": "endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80", "handle": 40}}, ' +
  '{"chain": {"family": "ip", "table": "other", "name": "x", "handle": 2}}]}';
const NFT_MAPS =
  '{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, ' +
  '{"map": {"family": "ip", "name": "no-endpoint-services", "table": "kube-proxy", "type": ["ipv4_addr", "inet_proto", "inet_service"], "handle": 19, ' +
  '"comment": "vmap to drop or reject packets to services with no endpoints", "map": "verdict"}}, ' +
  '{"map": {"family": "ip", "name": "firewall-ips", "table": "kube-proxy", "type": ["ipv4_addr", "inet_proto", "inet_service"], "handle": 21, "flags": ["interval"], "comment": "destinations that are subject to LoadBalancerSourceRanges", "map": "verdict"}}]}';

/** The reference: every item through JSON.parse. */
function reference(text: string, kind: string, family: string, table = 'kube-proxy'): string[] {
  const doc = JSON.parse(text) as { nftables: Record<string, Record<string, unknown>>[] };
  return doc.nftables.flatMap((item) => {
    const o = item[kind];
    return o && o['family'] === family && (kind === 'table' ? o['name'] : o['table']) === table ? [String(o['name'])] : [];
  });
}

describe("namesIn: one table's names in nft's JSON listing, read item by item (no object per chain)", () => {
  it('keeps only the kube-proxy table of the family', () => {
    expect(namesIn(compact, 'chain', 'ip')).toEqual(['services']);
    expect(namesIn(compact, 'table', 'ip')).toEqual(['kube-proxy']);
    expect(namesIn(compact, 'set', 'ip')).toEqual(['cluster-ips']);
    expect(namesIn(compact, 'chain', 'ip6')).toEqual(['masquerading']);
    expect(namesIn(compact, 'table', 'ip6')).toEqual([]);
  });

  it("reads nft's own form without JSON.parse: base chains with hook and priority, names with / and ., maps with type arrays, flags and comments, keys in any order", () => {
    const parse = vi.spyOn(JSON, 'parse');
    expect(namesIn(NFT_CHAINS, 'chain', 'ip')).toEqual(['filter-input', 'endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80']);
    expect(namesIn(NFT_CHAINS, 'chain', 'ip', 'other')).toEqual(['x']);
    expect(namesIn(NFT_MAPS, 'map', 'ip')).toEqual(['no-endpoint-services', 'firewall-ips']);
    expect(namesIn(NFT_MAPS, 'chain', 'ip')).toEqual([]);
    expect(parse).not.toHaveBeenCalled();
    parse.mockRestore();
  });

  it('decodes escapes, and a comment that spells out an item is not read as one', () => {
    const text = JSON.stringify({
      nftables: [
        { set: { family: 'ip', name: 'a"b\\c', table: 'kube-proxy', comment: '{"set": {"family": "ip", "name": "fake", "table": "kube-proxy"}}' } },
        { set: { comment: 'x\\', table: 'kube-proxy', family: 'ip', name: 'é' } },
      ],
    });
    expect(namesIn(text, 'set', 'ip')).toEqual(['a"b\\c', 'é']);
    expect(namesIn(text, 'set', 'ip')).toEqual(reference(text, 'set', 'ip'));
  });

  it('falls back to JSON.parse for an item it cannot match whole (a nested object), with the same answer', () => {
    const text = JSON.stringify({
      nftables: [
        { chain: { family: 'ip', table: 'kube-proxy', name: 'a', extra: { nested: true } } },
        { chain: { family: 'ip', table: 'kube-proxy', name: 'b' } },
      ],
    });
    const parse = vi.spyOn(JSON, 'parse');
    expect(namesIn(text, 'chain', 'ip')).toEqual(['a', 'b']);
    expect(parse).toHaveBeenCalledTimes(1);
    parse.mockRestore();
  });

  it('reads base chains with their type, hook, priority and policy (the damage check compares them), through the scan and JSON.parse alike', () => {
    const text =
      '{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}}, ' +
      '{"chain": {"family": "ip", "table": "kube-proxy", "name": "nat-prerouting", "handle": 1, "type": "nat", "hook": "prerouting", "prio": 50, "policy": "accept"}}, ' +
      '{"chain": {"family": "ip", "table": "kube-proxy", "name": "filter-forward", "handle": 2, "type": "filter", "hook": "forward", "prio": 0, "policy": "drop"}}, ' +
      '{"chain": {"family": "ip", "table": "kube-proxy", "name": "x", "handle": 3, "comment": "\\"hook\\": \\"input\\", \\"prio\\": 1"}}, ' +
      '{"chain": {"family": "ip", "table": "other", "name": "y", "handle": 4, "type": "filter", "hook": "input", "prio": -5, "policy": "drop"}}]}';
    const want = {
      names: ['nat-prerouting', 'filter-forward', 'x'],
      bases: [
        { name: 'nat-prerouting', type: 'nat', hook: 'prerouting', priority: 50, policy: 'accept' },
        { name: 'filter-forward', type: 'filter', hook: 'forward', priority: 0, policy: 'drop' },
      ],
    };
    const parse = vi.spyOn(JSON, 'parse');
    expect(chainsIn(text, 'ip')).toEqual(want);
    expect(parse).not.toHaveBeenCalled();
    parse.mockRestore();
    // With an item the scan cannot match whole: JSON.parse reads the same.
    expect(chainsIn(text.replace('"handle": 4', '"handle": 4, "extra": {"n": 1}'), 'ip')).toEqual(want);
  });

  it('refuses a listing cut short, or not a listing at all, instead of reading part of it', () => {
    expect(() => namesIn(NFT_CHAINS.slice(0, -40), 'chain', 'ip')).toThrow(/cannot read nft JSON listing/);
    expect(() => namesIn('{"other": []}', 'chain', 'ip')).toThrow(/no "nftables" array/);
    expect(() => namesIn('Error: syntax error', 'chain', 'ip')).toThrow(/cannot read nft JSON listing/);
  });

  it('gives what JSON.parse gives for a 60,000-chain listing', () => {
    const items = [
      { metainfo: { version: '1.0.6' } },
      ...Array.from({ length: 60_000 }, (_, i) => ({
        chain: { family: 'ip', table: 'kube-proxy', name: `endpoint-${i}-ns/svc-${i % 97}/tcp/p80__10.1.${i % 250}.${i % 200}/80`, handle: i },
      })),
    ];
    const text = JSON.stringify({ nftables: items }).replace(/":/g, '": ').replace(/,"/g, ', "');
    const names = namesIn(text, 'chain', 'ip');
    expect(names).toHaveLength(60_000);
    expect(names).toEqual(reference(text, 'chain', 'ip'));
  });
});
