import { describe, expect, it } from 'vitest';
import { ruleSets, ruleTargets } from './rule-ast.ts';
import { ruleFromJson } from './rule-json.ts';
import { normalizeRule, printRule } from './rule-print.ts';
import { parseRule, RuleSyntaxError } from './rule-text.ts';

// Every rule shape we write, next to what nft 1.0.6 lists for it (measured: nftables/testdata/*-listing.json).
const PAIRS: readonly [string, string][] = [
  ['ct state new jump firewall-check', 'ct state new jump firewall-check'],
  ['mark set mark or 0x00004000', 'meta mark set meta mark | 0x00004000'],
  ['mark and 0x00004000 == 0 return', 'meta mark & 0x00004000 == 0x00000000 return'],
  ['mark set mark xor 0x4000', 'meta mark set meta mark ^ 0x00004000'],
  ['masquerade fully-random', 'masquerade fully-random'],
  [
    'ip daddr { 172.30.0.0/16 } drop comment "Drop traffic to unallocated ClusterIPs"',
    'ip daddr 172.30.0.0/16 drop comment "Drop traffic to unallocated ClusterIPs"',
  ],
  ['ip daddr { 172.50.0.0/16,172.30.0.0/16 } drop', 'ip daddr { 172.30.0.0/16, 172.50.0.0/16 } drop'],
  ['ip saddr != { 203.0.113.0/25 , 192.168.0.0/24 , 1.2.3.4 } drop', 'ip saddr != { 1.2.3.4, 192.168.0.0/24, 203.0.113.0/25 } drop'],
  [
    'fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports',
    'fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports',
  ],
  ['ip6 daddr != ::1 meta l4proto . th dport vmap @no-endpoint-nodeports', 'ip6 daddr != ::1 meta l4proto . th dport vmap @no-endpoint-nodeports'],
  [
    'numgen random mod 2 vmap { 0 : goto endpoint-A-ns/s/tcp/p__10.0.0.1/80 , 1 : goto endpoint-B-ns/s/tcp/p__10.0.0.2/80 }',
    'numgen random mod 2 vmap { 0 : goto endpoint-A-ns/s/tcp/p__10.0.0.1/80, 1 : goto endpoint-B-ns/s/tcp/p__10.0.0.2/80 }',
  ],
  [
    'iifname veth* goto service-X-ns/s/tcp/p comment "short-circuit pod traffic"',
    'iifname "veth*" goto service-X-ns/s/tcp/p comment "short-circuit pod traffic"',
  ],
  ['ip6 daddr fd00:172:30::41 iifname != veth* jump mark-for-masquerade', 'ip6 daddr fd00:172:30::41 iifname != "veth*" jump mark-for-masquerade'],
  ['meta l4proto tcp dnat to [fd00:10:180::1]:80', 'meta l4proto tcp dnat to [fd00:10:180::1]:80'],
  ['update @affinity-X-ns/s/tcp/p__10.0.0.1/80 { ip saddr }', 'update @affinity-X-ns/s/tcp/p__10.0.0.1/80 { ip saddr }'],
  ['ip daddr 172.30.0.041 jump mark-for-masquerade', 'ip daddr 172.30.0.41 jump mark-for-masquerade'],
  [
    'meta l4proto tcp counter name "endpoint-A-ns/s/tcp/p__10.0.0.1/80" dnat to 10.0.0.1:80',
    'meta l4proto tcp counter name "endpoint-A-ns/s/tcp/p__10.0.0.1/80" dnat to 10.0.0.1:80',
  ],
  // Generation B (upstream v1.36+; measured with nft 1.0.6: testdata/*-listing-b.json).
  [
    'meta l4proto tcp dnat ip addr . port to numgen random mod 2 map { 0 : 10.180.0.1 . 80 , 1 : 10.180.0.2 . 80 }',
    'meta l4proto tcp dnat ip to numgen random mod 2 map { 0 : 10.180.0.1 . 80, 1 : 10.180.0.2 . 80 }',
  ],
  [
    'meta l4proto sctp dnat ip6 addr . port to numgen random mod 1 map { 0 : fd00:10:180:0::7 . 99 }',
    'meta l4proto sctp dnat ip6 to numgen random mod 1 map { 0 : fd00:10:180::7 . 99 }',
  ],
  [
    'mark and 0x00004000 != 0 mark set mark xor 0x00004000 masquerade fully-random',
    'meta mark & 0x00004000 != 0x00000000 meta mark set meta mark ^ 0x00004000 masquerade fully-random',
  ],
  [
    'ct status dnat ip6 saddr . ip6 daddr . meta l4proto . th dport @hairpin-connections masquerade fully-random',
    'ct status dnat ip6 saddr . ip6 daddr . meta l4proto . th dport @hairpin-connections masquerade fully-random',
  ],
  [
    'ip daddr @cluster-ips ip saddr != 10.0.0.0/8 mark set mark or 0x00004000 comment "masquerade clusterIP traffic from outside cluster"',
    'ip daddr @cluster-ips ip saddr != 10.0.0.0/8 meta mark set meta mark | 0x00004000 comment "masquerade clusterIP traffic from outside cluster"',
  ],
  ['mark set mark or 0x00004000 comment "masquerade"', 'meta mark set meta mark | 0x00004000 comment "masquerade"'],
];

describe('rule text: what we write and what nft lists read the same', () => {
  it.each(PAIRS)('%s', (written, listed) => {
    expect(normalizeRule(written)).toBe(listed);
    expect(normalizeRule(listed)).toBe(listed);
  });

  it("names the chains and sets a rule refers to (for the fake nft's reference checks)", () => {
    const r = parseRule('ip saddr @affinity-A goto endpoint-A');
    expect(ruleTargets(r)).toEqual(['endpoint-A']);
    expect(ruleSets(r)).toEqual(['affinity-A']);
    expect(ruleTargets(parseRule('numgen random mod 2 vmap { 0 : goto a , 1 : jump b }'))).toEqual(['a', 'b']);
    expect(ruleSets(parseRule('ip daddr . meta l4proto . th dport vmap @service-ips'))).toEqual(['service-ips']);
  });

  it.each([
    ['ip daddr', /expected a value/],
    ['counter packets 0 bytes 0', /unknown expression "counter"/],
    ['ip daddr 1.2.3.4 comment unquoted', /quoted string at the end/],
    ['numgen random mod x vmap @m', /expected a number/],
    ['dnat ip to numgen random mod 1 map { 0 : 10.0.0.1 }', /expected "\."/],
    ['dnat ip to numgen random mod 1 map { }', /empty DNAT map/],
  ])('refuses %s, naming the problem', (text, why) => {
    expect(() => parseRule(text)).toThrow(RuleSyntaxError);
    expect(() => parseRule(text)).toThrow(why);
  });
});

describe('rule JSON (nft -j list, schema 1)', () => {
  it("reads upstream's statements into the same canonical text", () => {
    const cases: [unknown[], string | null, string][] = [
      [
        [{ match: { op: 'in', left: { ct: { key: 'state' } }, right: 'new' } }, { jump: { target: 'firewall-check' } }],
        null,
        'ct state new jump firewall-check',
      ],
      [
        [{ mangle: { key: { meta: { key: 'mark' } }, value: { '|': [{ meta: { key: 'mark' } }, 16384] } } }],
        null,
        'meta mark set meta mark | 0x00004000',
      ],
      [
        [{ match: { op: '==', left: { '&': [{ meta: { key: 'mark' } }, 16384] }, right: 0 } }, { return: null }],
        null,
        'meta mark & 0x00004000 == 0x00000000 return',
      ],
      [[{ reject: { type: 'icmpv6', expr: 'port-unreachable' } }], null, 'reject'],
      [
        [
          {
            match: {
              op: '!=',
              left: { payload: { protocol: 'ip', field: 'saddr' } },
              right: { set: ['1.2.3.4', { prefix: { addr: '192.168.0.0', len: 24 } }] },
            },
          },
          { drop: null },
        ],
        null,
        'ip saddr != { 1.2.3.4, 192.168.0.0/24 } drop',
      ],
      [
        [
          {
            vmap: {
              key: { numgen: { mode: 'random', mod: 2, offset: 0 } },
              data: {
                set: [
                  [0, { goto: { target: 'a' } }],
                  [1, { goto: { target: 'b' } }],
                ],
              },
            },
          },
        ],
        null,
        'numgen random mod 2 vmap { 0 : goto a, 1 : goto b }',
      ],
      [[{ set: { op: 'update', elem: { payload: { protocol: 'ip6', field: 'saddr' } }, set: '@aff' } }], null, 'update @aff { ip6 saddr }'],
      [
        [{ match: { op: '==', left: { fib: { result: 'type', flags: ['saddr'] } }, right: 'local' } }, { goto: { target: 's' } }],
        'short-circuit local traffic',
        'fib saddr type local goto s comment "short-circuit local traffic"',
      ],
      [
        [{ match: { op: '==', left: { meta: { key: 'l4proto' } }, right: 'udp' } }, { dnat: { addr: '10.0.0.1', port: 53 } }],
        null,
        'meta l4proto udp dnat to 10.0.0.1:53',
      ],
      [[{ masquerade: { flags: 'fully-random' } }], null, 'masquerade fully-random'],
      [
        [
          {
            dnat: {
              family: 'ip6',
              addr: {
                map: {
                  key: { numgen: { mode: 'random', mod: 2, offset: 0 } },
                  data: {
                    set: [
                      [0, { concat: ['fd00:10:180::1', 80] }],
                      [1, { concat: ['fd00:10:180::2', 80] }],
                    ],
                  },
                },
              },
            },
          },
        ],
        null,
        'dnat ip6 to numgen random mod 2 map { 0 : fd00:10:180::1 . 80, 1 : fd00:10:180::2 . 80 }',
      ],
      [
        [
          { match: { op: 'in', left: { ct: { key: 'status' } }, right: 'dnat' } },
          {
            match: {
              op: '==',
              left: {
                concat: [
                  { payload: { protocol: 'ip', field: 'saddr' } },
                  { payload: { protocol: 'ip', field: 'daddr' } },
                  { meta: { key: 'l4proto' } },
                  { payload: { protocol: 'th', field: 'dport' } },
                ],
              },
              right: '@hairpin-connections',
            },
          },
          { masquerade: { flags: 'fully-random' } },
        ],
        null,
        'ct status dnat ip saddr . ip daddr . meta l4proto . th dport @hairpin-connections masquerade fully-random',
      ],
      [
        [{ counter: 'endpoint-A-ns/s/tcp/p__10.0.0.1/80' }, { dnat: { addr: '10.0.0.1', port: 80 } }],
        null,
        'counter name "endpoint-A-ns/s/tcp/p__10.0.0.1/80" dnat to 10.0.0.1:80',
      ],
    ];
    for (const [exprs, comment, text] of cases) expect(printRule(ruleFromJson(exprs, comment))).toBe(text);
  });

  it('keeps statements it does not know as raw JSON, so a foreign rule never equals one of ours', () => {
    const text = printRule(ruleFromJson([{ counter: { packets: 1, bytes: 2 } }, { accept: null }], null));
    expect(text).toBe('json:{"counter":{"packets":1,"bytes":2}} accept');
  });
});
