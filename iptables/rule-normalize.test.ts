import { describe, expect, it } from 'vitest';
import type { IPFamily } from '../proxier/types.ts';
import { canonicalProbability, normalizeRuleSpec, sameRuleSpec } from './rule-normalize.ts';
import { tokenizeRule } from './rule-words.ts';

/**
 * [family, table, rule as written to iptables-restore, the same rule as
 * iptables-save v1.8.9 printed it back]. Captured by loading each rule into a
 * fresh network namespace (`unshare -n`) with iptables-nft-restore and
 * iptables-legacy-restore (ip6tables-* for IPv6) and reading it back with the
 * matching -save; both backends printed identical text for every rule here.
 */
const SAVED: readonly [IPFamily, string, string, string][] = [
  [
    'IPv4',
    'nat',
    '-m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O',
    '-d 172.30.0.41/32 -p tcp -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O',
  ],
  [
    'IPv4',
    'nat',
    '-m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ',
    '! -s 10.0.0.0/8 -d 172.30.0.41/32 -p tcp -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ',
  ],
  [
    'IPv4',
    'nat',
    '-m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ',
    '-s 10.180.0.1/32 -m comment --comment "ns1/svc1:p80" -j KUBE-MARK-MASQ',
  ],
  [
    'IPv4',
    'nat',
    '-m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80',
    '-p tcp -m comment --comment "ns1/svc1:p80" -m tcp -j DNAT --to-destination 10.180.0.1:80',
  ],
  [
    'IPv4',
    'nat',
    '-m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -m statistic --mode random --probability 0.3333333333 -j KUBE-SEP-SXIVWICOYRO3J4NJ',
    '-m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -m statistic --mode random --probability 0.33333333349 -j KUBE-SEP-SXIVWICOYRO3J4NJ',
  ],
  [
    'IPv4',
    'nat',
    '-m comment --comment "ns1/svc1:p80 -> 10.180.0.2:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-SXIVWICOYRO3J4NJ',
    '-m comment --comment "ns1/svc1:p80 -> 10.180.0.2:80" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-SXIVWICOYRO3J4NJ',
  ],
  [
    'IPv4',
    'nat',
    '-m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -m recent --name KUBE-SEP-SXIVWICOYRO3J4NJ --rcheck --seconds 10800 --reap -j KUBE-SEP-SXIVWICOYRO3J4NJ',
    '-m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-SXIVWICOYRO3J4NJ --mask 255.255.255.255 --rsource -j KUBE-SEP-SXIVWICOYRO3J4NJ',
  ],
  [
    'IPv4',
    'nat',
    '-m comment --comment ns1/svc1:p80 -m recent --name KUBE-SEP-SXIVWICOYRO3J4NJ --set -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80',
    '-p tcp -m comment --comment "ns1/svc1:p80" -m recent --set --name KUBE-SEP-SXIVWICOYRO3J4NJ --mask 255.255.255.255 --rsource -m tcp -j DNAT --to-destination 10.180.0.1:80',
  ],
  ['IPv4', 'nat', '-m mark ! --mark 0x00004000/0x00004000 -j RETURN', '-m mark ! --mark 0x4000/0x4000 -j RETURN'],
  ['IPv4', 'nat', '-j MARK --xor-mark 0x00004000', '-j MARK --set-xmark 0x4000/0x0'],
  ['IPv4', 'nat', '-j MARK --or-mark 0x00004000', '-j MARK --set-xmark 0x4000/0x4000'],
  [
    'IPv4',
    'nat',
    '-m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
    '-m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
  ],
  [
    'IPv4',
    'nat',
    '-m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS',
    '-m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS',
  ],
  [
    'IPv4',
    'nat',
    '-m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS',
    '! -d 127.0.0.0/8 -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS',
  ],
  [
    'IPv4',
    'nat',
    '-m comment --comment "masquerade LOCAL traffic for ns2/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ',
    '-m comment --comment "masquerade LOCAL traffic for ns2/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ',
  ],
  [
    'IPv4',
    'nat',
    '-m comment --comment "pod traffic for ns2/svc2:p80 external destinations" -s 10.0.0.0/8 -j KUBE-SVC-XPGD46QRK7WJZT7O',
    '-s 10.0.0.0/8 -m comment --comment "pod traffic for ns2/svc2:p80 external destinations" -j KUBE-SVC-XPGD46QRK7WJZT7O',
  ],
  [
    'IPv4',
    'nat',
    '-m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -i cbr0 -j KUBE-MARK-MASQ',
    '-d 172.30.0.41/32 ! -i cbr0 -p tcp -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ',
  ],
  [
    'IPv4',
    'nat',
    '-m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -i veth+ -j KUBE-MARK-MASQ',
    '-d 172.30.0.41/32 ! -i veth+ -p tcp -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ',
  ],
  [
    'IPv4',
    'nat',
    '-m comment --comment "pod traffic for ns2/svc2:p80 external destinations" -i veth+ -j KUBE-SVC-XPGD46QRK7WJZT7O',
    '-i veth+ -m comment --comment "pod traffic for ns2/svc2:p80 external destinations" -j KUBE-SVC-XPGD46QRK7WJZT7O',
  ],
  [
    'IPv4',
    'nat',
    '-m comment --comment "other traffic to ns5/svc5:p80 will be dropped by KUBE-PROXY-FIREWALL"',
    '-m comment --comment "other traffic to ns5/svc5:p80 will be dropped by KUBE-PROXY-FIREWALL"',
  ],
  [
    'IPv4',
    'nat',
    '-m udp -p udp -d 172.30.0.43 --dport 53 -j REDIRECT --to-ports 8053',
    '-d 172.30.0.43/32 -p udp -m udp --dport 53 -j REDIRECT --to-ports 8053',
  ],
  [
    'IPv4',
    'nat',
    '-m comment --comment "ns1/svc1:p80 -> 10.180.0.3:80" -m statistic --mode random --probability 0.1428571429 -j KUBE-SEP-SXIVWICOYRO3J4NJ',
    '-m comment --comment "ns1/svc1:p80 -> 10.180.0.3:80" -m statistic --mode random --probability 0.14285714272 -j KUBE-SEP-SXIVWICOYRO3J4NJ',
  ],
  [
    'IPv4',
    'nat',
    '-m comment --comment "ns1/svc1:p80 -> 10.180.0.3:80" -m statistic --mode random --probability 0.0000099999 -j KUBE-SEP-SXIVWICOYRO3J4NJ',
    '-m comment --comment "ns1/svc1:p80 -> 10.180.0.3:80" -m statistic --mode random --probability 0.00001000008 -j KUBE-SEP-SXIVWICOYRO3J4NJ',
  ],
  [
    'IPv4',
    'nat',
    '-m sctp -p sctp -d 172.30.0.44 --dport 3868 -j KUBE-SVC-XPGD46QRK7WJZT7O',
    '-d 172.30.0.44/32 -p sctp -m sctp --dport 3868 -j KUBE-SVC-XPGD46QRK7WJZT7O',
  ],
  [
    'IPv4',
    'nat',
    '-p tcp --dport 8080 -m comment --comment "implicit tcp match" -j KUBE-SVC-XPGD46QRK7WJZT7O',
    '-p tcp -m tcp --dport 8080 -m comment --comment "implicit tcp match" -j KUBE-SVC-XPGD46QRK7WJZT7O',
  ],
  [
    'IPv4',
    'nat',
    '-m comment --comment "with \\"quotes\\" and \\\\ backslash" -j RETURN',
    '-m comment --comment "with \\"quotes\\" and \\\\ backslash" -j RETURN',
  ],
  ['IPv4', 'nat', '-j MARK --set-mark 5', '-j MARK --set-xmark 0x5/0xffffffff'],
  ['IPv4', 'nat', '-j MARK --and-mark 0xff', '-j MARK --set-xmark 0x0/0xffffff00'],
  ['IPv4', 'nat', '-j SNAT --to-source 192.168.0.2', '-j SNAT --to-source 192.168.0.2'],
  [
    'IPv4',
    'filter',
    '-m comment --comment "ns1/svc1:p80 has no endpoints" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j REJECT',
    '-d 172.30.0.41/32 -p tcp -m comment --comment "ns1/svc1:p80 has no endpoints" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable',
  ],
  [
    'IPv4',
    'filter',
    '-m comment --comment "ns2/svc2:p80 has no local endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 3001 -j DROP',
    '-p tcp -m comment --comment "ns2/svc2:p80 has no local endpoints" -m addrtype --dst-type LOCAL -m tcp --dport 3001 -j DROP',
  ],
  [
    'IPv4',
    'filter',
    '-m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP',
    '! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP',
  ],
  ['IPv4', 'filter', '-m conntrack --ctstate INVALID -j DROP', '-m conntrack --ctstate INVALID -j DROP'],
  [
    'IPv4',
    'filter',
    '-m comment --comment "kubernetes forwarding rules" -m mark --mark 0x00004000/0x00004000 -j ACCEPT',
    '-m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT',
  ],
  [
    'IPv4',
    'filter',
    '-m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT',
    '-m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
  ],
  [
    'IPv4',
    'filter',
    '-m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
  ],
  [
    'IPv4',
    'filter',
    '-m comment --comment "ns3/svc3:p80 health check node port" -m tcp -p tcp --dport 30000 -j ACCEPT',
    '-p tcp -m comment --comment "ns3/svc3:p80 health check node port" -m tcp --dport 30000 -j ACCEPT',
  ],
  ['IPv4', 'filter', '-m addrtype ! --src-type LOCAL ! --dst-type LOCAL -j ACCEPT', '-m addrtype ! --src-type LOCAL ! --dst-type LOCAL -j ACCEPT'],
  ['IPv4', 'filter', '-m mark --mark 16 -j ACCEPT', '-m mark --mark 0x10 -j ACCEPT'],
  [
    'IPv4',
    'filter',
    '-m comment --comment "ns4/svc4:p80 traffic not accepted by KUBE-FW-4SW47YFZTEDKD3PK" -m tcp -p tcp -d 5.6.7.8 --dport 80 -j DROP',
    '-d 5.6.7.8/32 -p tcp -m comment --comment "ns4/svc4:p80 traffic not accepted by KUBE-FW-4SW47YFZTEDKD3PK" -m tcp --dport 80 -j DROP',
  ],
  [
    'IPv4',
    'filter',
    '-s 5.6.7.8/255.255.0.0 -d 1.2.3.4/24 -o eth0 -j REJECT --reject-with icmp-host-unreachable',
    '-s 5.6.0.0/16 -d 1.2.3.0/24 -o eth0 -j REJECT --reject-with icmp-host-unreachable',
  ],
  ['IPv4', 'filter', '-m comment --comment x -j LOG --log-prefix "kube drop: "', '-m comment --comment x -j LOG --log-prefix "kube drop: "'],
  [
    'IPv6',
    'nat',
    '-m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d fd00:30::41 --dport 80 ! -s fd00:10::/64 -j KUBE-MARK-MASQ',
    '! -s fd00:10::/64 -d fd00:30::41/128 -p tcp -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ',
  ],
  [
    'IPv6',
    'nat',
    '-m comment --comment ns1/svc1:p80 -s fd00:10::1 -j KUBE-MARK-MASQ',
    '-s fd00:10::1/128 -m comment --comment "ns1/svc1:p80" -j KUBE-MARK-MASQ',
  ],
  [
    'IPv6',
    'nat',
    '-m comment --comment ns1/svc1:p80 -m recent --name KUBE-SEP-X --set -m tcp -p tcp -j DNAT --to-destination [fd00:10::1]:80',
    '-p tcp -m comment --comment "ns1/svc1:p80" -m recent --set --name KUBE-SEP-X --mask ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff --rsource -m tcp -j DNAT --to-destination [fd00:10::1]:80',
  ],
  [
    'IPv6',
    'nat',
    '-m comment --comment "ns1/svc1:p80 -> [fd00:10::1]:80" -m recent --name KUBE-SEP-X --rcheck --seconds 10800 --reap -j KUBE-SEP-X',
    '-m comment --comment "ns1/svc1:p80 -> [fd00:10::1]:80" -m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-X --mask ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff --rsource -j KUBE-SEP-X',
  ],
  [
    'IPv6',
    'nat',
    '-m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL ! -d ::1/128 -j KUBE-NODEPORTS',
    '! -d ::1/128 -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS',
  ],
  [
    'IPv6',
    'nat',
    '-p tcp -d FD00:30:0::42 -j DNAT --to-destination [fd00:10:0::2]:8080',
    '-d fd00:30::42/128 -p tcp -j DNAT --to-destination [fd00:10::2]:8080',
  ],
  [
    'IPv6',
    'filter',
    '-m comment --comment "ns1/svc1:p80 has no endpoints" -m tcp -p tcp -d fd00:30::41 --dport 80 -j REJECT',
    '-d fd00:30::41/128 -p tcp -m comment --comment "ns1/svc1:p80 has no endpoints" -m tcp --dport 80 -j REJECT --reject-with icmp6-port-unreachable',
  ],
  ['IPv6', 'filter', '-s 2001:db8::5/ffff:ffff:ffff:ffff:: -j DROP', '-s 2001:db8::/64 -j DROP'],
];

/** The saved words, minus a protocol match without options (which the canonical form leaves out). */
function savedWords(saved: string): string[] {
  const w = tokenizeRule(saved);
  const out: string[] = [];
  for (let i = 0; i < w.length; i++) {
    const bare = w[i] === '-m' && ['tcp', 'udp', 'sctp'].includes(w[i + 1]!) && [undefined, '-j', '-g', '-m'].includes(w[i + 2]);
    if (bare) i++;
    else out.push(w[i]!);
  }
  return out;
}

describe('normalizeRuleSpec against real iptables-save output', () => {
  it.each(SAVED)('%s %s: %s', (family, _table, written, saved) => {
    expect(normalizeRuleSpec(written, family)).toBe(normalizeRuleSpec(saved, family));
    // The canonical form is iptables-save's own text (up to quoting).
    expect(tokenizeRule(normalizeRuleSpec(saved, family))).toEqual(savedWords(saved));
  });

  it('infers the family from the addresses when none is given', () => {
    expect(normalizeRuleSpec('-m tcp -p tcp -d fd00:30::41 --dport 80 -j REJECT')).toBe(
      '-d fd00:30::41/128 -p tcp -m tcp --dport 80 -j REJECT --reject-with icmp6-port-unreachable',
    );
    expect(normalizeRuleSpec('-j REJECT')).toBe('-j REJECT --reject-with icmp-port-unreachable');
  });
});

describe('normalizeRuleSpec: what the two backends print differently', () => {
  // "-p tcp -m tcp --dport 80 -m tcp --sport 5": nft prints one merged tcp match, legacy keeps both.
  it('merges repeated protocol matches', () => {
    const nft = '-p tcp -m tcp --sport 5 --dport 80 -j ACCEPT';
    const legacy = '-p tcp -m tcp --dport 80 -m tcp --sport 5 -j ACCEPT';
    expect(normalizeRuleSpec(legacy)).toBe(normalizeRuleSpec(nft));
    expect(normalizeRuleSpec('-p tcp -m tcp -m tcp --dport 80 -j ACCEPT')).toBe('-p tcp -m tcp --dport 80 -j ACCEPT');
  });

  it('treats -p tcp with and without a bare -m tcp as the same rule', () => {
    expect(sameRuleSpec('-p tcp -j ACCEPT', '-p tcp -m tcp -j ACCEPT')).toBe(true);
  });
});

describe('normalizeRuleSpec keeps different rules different', () => {
  const pairs: [string, string][] = [
    ['-s 10.0.0.0/8 -j X', '! -s 10.0.0.0/8 -j X'],
    ['-m mark --mark 0x4000/0x4000 -j RETURN', '-m mark ! --mark 0x4000/0x4000 -j RETURN'],
    ['-m mark --mark 0x4000 -j RETURN', '-m mark --mark 0x4000/0x4000 -j RETURN'],
    ['-j MARK --or-mark 0x4000', '-j MARK --xor-mark 0x4000'],
    ['-m statistic --mode random --probability 0.3333333333 -j X', '-m statistic --mode random --probability 0.3333333334 -j Y'],
    ['-m statistic --mode random --probability 0.3333333333 -j X', '-m statistic --mode random --probability 0.3333 -j X'],
    ['-m comment --comment "a b" -j X', '-m comment --comment "a  b" -j X'],
    ['-i eth0+ -j X', '-i eth0 -j X'],
    ['-m addrtype --dst-type LOCAL -j X', '-m addrtype ! --dst-type LOCAL -j X'],
    ['-j X', '-g X'],
    ['-m comment --comment x', '-m comment --comment x -j RETURN'],
  ];
  it.each(pairs)('%s  vs  %s', (a, b) => {
    expect(sameRuleSpec(a, b)).toBe(false);
  });
});

describe('pieces of the canonical form', () => {
  it('compares comments as the kernel keeps them: 255 bytes, escaped or not', () => {
    const long = `ns1/${'x'.repeat(300)} cluster IP`;
    // iptables 1.8.9 cuts a longer comment to its first 255 bytes (checked in a namespace with both backends).
    const kept = `-m comment --comment ${long.slice(0, 255)} -j RETURN`;
    expect(normalizeRuleSpec(`-m comment --comment "${long}" -j RETURN`)).toBe(normalizeRuleSpec(kept));
    expect(normalizeRuleSpec('-m comment --comment "a\\"b c\\\\d \\\'e" -j RETURN')).toBe(
      normalizeRuleSpec(`-m comment --comment "a\\"b c\\\\d 'e" -j RETURN`),
    );
    expect(normalizeRuleSpec(`-m comment --comment ${'y'.repeat(255)} -j RETURN`)).not.toBe(
      normalizeRuleSpec(`-m comment --comment ${'y'.repeat(254)} -j RETURN`),
    );
  });

  it('stores probabilities as the kernel does', () => {
    expect(canonicalProbability('0.3333333333')).toBe('0.33333333349');
    expect(canonicalProbability('0.5000000000')).toBe('0.50000000000');
    expect(canonicalProbability('0.1428571429')).toBe('0.14285714272');
    expect(canonicalProbability('0.0000099999')).toBe('0.00001000008');
    expect(canonicalProbability('1.0')).toBe('1.00000000000');
  });

  it('orders conntrack states and address types as iptables prints them', () => {
    // Printed back by iptables-save: "--ctstate INVALID,NEW,RELATED,ESTABLISHED,DNAT", "--src-type UNICAST,LOCAL".
    expect(normalizeRuleSpec('-m conntrack --ctstate ESTABLISHED,RELATED,NEW,INVALID,DNAT -j ACCEPT')).toBe(
      '-m conntrack --ctstate INVALID,NEW,RELATED,ESTABLISHED,DNAT -j ACCEPT',
    );
    expect(normalizeRuleSpec('-m addrtype --src-type LOCAL,UNICAST ! --dst-type LOCAL -j ACCEPT')).toBe(
      '-m addrtype --src-type UNICAST,LOCAL ! --dst-type LOCAL -j ACCEPT',
    );
  });

  it('accepts long option names and protocol numbers', () => {
    expect(normalizeRuleSpec('--protocol 17 --source 10.1.0.0/16 --jump ACCEPT --match udp --destination-port 53')).toBe(
      '-s 10.1.0.0/16 -p udp -m udp --dport 53 -j ACCEPT',
    );
  });

  it('fills in the CONNMARK and recent defaults', () => {
    // Printed back by iptables-save for "-j CONNMARK --restore-mark" and "-m recent --rcheck".
    expect(normalizeRuleSpec('-j CONNMARK --restore-mark')).toBe('-j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff');
    expect(normalizeRuleSpec('-m recent --rcheck -j RETURN')).toBe('-m recent --rcheck --name DEFAULT --mask 255.255.255.255 --rsource -j RETURN');
    expect(normalizeRuleSpec('-m recent --rcheck -j RETURN', 'IPv6')).toBe(
      '-m recent --rcheck --name DEFAULT --mask ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff --rsource -j RETURN',
    );
  });
});
