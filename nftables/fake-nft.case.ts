/**
 * Transaction semantics the fake nft must share with the kernel, as cases:
 * a setup transaction, then one under test, and its outcome (ok, or the
 * error kind nft reports). fake-nft.test.ts runs them on FakeNft,
 * nft.e2e.test.ts on the real nft in a network namespace; both must
 * agree with `expect`. `after` is a rule or element that must (or, with "!",
 * must not) be in the table afterwards (dump text).
 */
import type { NftErrorKind } from './errors.ts';

export interface SemanticsCase {
  readonly name: string;
  readonly setup: string;
  readonly tx: string;
  readonly expect: 'ok' | NftErrorKind;
  /** The line the error points at (1-based in tx). */
  readonly line?: number;
  readonly after?: readonly string[];
}

const T = 'ip kube-proxy';
const lines = (...l: string[]) => l.join('\n') + '\n';

const BASE = lines(
  `add table ${T}`,
  `add chain ${T} a`,
  `add chain ${T} b`,
  `add rule ${T} a jump b`,
  `add rule ${T} b accept`,
  `add map ${T} m { type ipv4_addr : verdict ; }`,
  `add element ${T} m { 1.2.3.4 comment "x" : goto b }`,
  `add set ${T} s { type ipv4_addr ; flags dynamic,timeout ; timeout 10s ; }`,
  `add rule ${T} a ip saddr @s accept`,
);

/** Generation B's own objects (upstream v1.36+ setupNFTables): the hairpin-connections set and the masquerading chain. */
const BASE_B =
  BASE +
  lines(
    `add set ${T} hairpin-connections { type ipv4_addr . ipv4_addr . inet_proto . inet_service ; comment "service hairpin connections" ; }`,
    `add chain ${T} masquerading`,
    `add chain ${T} svc`,
  );

export const SEMANTICS: readonly SemanticsCase[] = [
  {
    name: 'a chain with rules can be deleted when nothing refers to it',
    setup: BASE,
    tx: lines(`add chain ${T} c`, `add rule ${T} c accept`, `delete chain ${T} c`),
    expect: 'ok',
  },
  {
    name: 'a chain a rule jumps to is busy',
    setup: BASE,
    tx: lines(`delete element ${T} m { 1.2.3.4 }`, `delete chain ${T} b`),
    expect: 'busy',
    line: 2,
  },
  {
    name: 'a chain a map element points to is busy, even with the rules flushed',
    setup: BASE,
    tx: lines(`flush chain ${T} a`, `delete chain ${T} b`),
    expect: 'busy',
    line: 2,
  },
  {
    name: 'an element deleted earlier in the same transaction no longer holds its chain (Linux 6.18)',
    setup: BASE,
    tx: lines(`flush chain ${T} a`, `delete element ${T} m { 1.2.3.4 }`, `delete chain ${T} b`),
    expect: 'ok',
  },
  {
    name: 'flush map releases the chains at once',
    setup: BASE,
    tx: lines(`flush chain ${T} a`, `flush map ${T} m`, `delete chain ${T} b`),
    expect: 'ok',
  },
  {
    name: 'the chain can go in the next transaction after its element',
    setup: BASE + lines(`flush chain ${T} a`, `delete element ${T} m { 1.2.3.4 }`),
    tx: lines(`delete chain ${T} b`),
    expect: 'ok',
  },
  { name: 'a set a rule uses is busy', setup: BASE, tx: lines(`delete set ${T} s`), expect: 'busy', line: 1 },
  {
    name: 'a set can go once the rules using it are flushed in the same transaction',
    setup: BASE,
    tx: lines(`flush chain ${T} a`, `delete set ${T} s`),
    expect: 'ok',
  },
  {
    name: 'delete and add a set in one transaction changes its timeout',
    setup: BASE,
    tx: lines(
      `flush chain ${T} a`,
      `delete set ${T} s`,
      `add set ${T} s { type ipv4_addr ; flags dynamic,timeout ; timeout 20s ; }`,
      `add rule ${T} a ip saddr @s accept`,
    ),
    expect: 'ok',
    after: ['add set ip kube-proxy s { type ipv4_addr ; flags dynamic,timeout ; timeout 20s ; }'],
  },
  {
    name: 'add of an existing set with another timeout updates it in place (Linux 6.18)',
    setup: BASE,
    tx: lines(`add set ${T} s { type ipv4_addr ; flags dynamic,timeout ; timeout 30s ; }`),
    expect: 'ok',
    after: ['add set ip kube-proxy s { type ipv4_addr ; flags dynamic,timeout ; timeout 30s ; }'],
  },
  { name: 'adding a map element again with the same value is fine', setup: BASE, tx: lines(`add element ${T} m { 1.2.3.4 : goto b }`), expect: 'ok' },
  {
    name: 'adding a map element with another value is "File exists"',
    setup: BASE,
    tx: lines(`add element ${T} m { 1.2.3.4 : drop }`),
    expect: 'exists',
    line: 1,
  },
  {
    name: 'delete + add replaces a map element (value and comment)',
    setup: BASE,
    tx: lines(`delete element ${T} m { 1.2.3.4 }`, `add element ${T} m { 1.2.3.4 comment "y" : drop }`),
    expect: 'ok',
    after: ['add element ip kube-proxy m { 1.2.3.4 comment "y" : drop }'],
  },
  {
    name: 'adding an element again with another comment keeps the old comment',
    setup: BASE,
    tx: lines(`add element ${T} m { 1.2.3.4 comment "z" : goto b }`),
    expect: 'ok',
    after: ['add element ip kube-proxy m { 1.2.3.4 comment "x" : goto b }'],
  },
  {
    // nft splits its input on spaces and tabs only: a comment holds any other blank, and runs of spaces, as written.
    name: 'comments keep U+2003, U+2028, a no-break space and two spaces as written (element and rule)',
    setup: BASE,
    tx: lines(
      `add element ${T} m { 1.2.3.5 comment "a\u2003b  c\u00a0d\u2028e" : drop }`,
      `add rule ${T} b ip daddr 1.2.3.5 accept comment "x  y\u2003z"`,
    ),
    expect: 'ok',
    after: [
      'add element ip kube-proxy m { 1.2.3.5 comment "a\u2003b  c\u00a0d\u2028e" : drop }',
      'add rule ip kube-proxy b ip daddr 1.2.3.5 accept comment "x  y\u2003z"',
    ],
  },
  {
    name: 'deleting a missing element is "No such file or directory"',
    setup: BASE,
    tx: lines(`delete element ${T} m { 9.9.9.9 }`),
    expect: 'not-found',
    line: 1,
  },
  { name: 'flushing a missing chain is "No such file or directory"', setup: BASE, tx: lines(`flush chain ${T} nope`), expect: 'not-found', line: 1 },
  { name: 'deleting a missing chain is "No such file or directory"', setup: BASE, tx: lines(`delete chain ${T} nope`), expect: 'not-found', line: 1 },
  { name: 'a rule jumping to a missing chain is refused', setup: BASE, tx: lines(`add rule ${T} a jump nope`), expect: 'not-found', line: 1 },
  { name: 'a rule reading a missing set is refused', setup: BASE, tx: lines(`add rule ${T} a ip saddr @nope accept`), expect: 'not-found', line: 1 },
  {
    name: 'an element pointing at a missing chain is refused',
    setup: BASE,
    tx: lines(`add element ${T} m { 6.6.6.6 : goto nope }`),
    expect: 'not-found',
    line: 1,
  },
  {
    name: "a base chain's priority cannot change in place",
    setup: BASE + lines(`add chain ${T} f { type filter hook input priority 0 ; }`),
    tx: lines(`add chain ${T} f { type filter hook input priority 10 ; }`),
    expect: 'unsupported',
    line: 1,
  },
  {
    name: 'add + delete + add re-creates a base chain with a new priority',
    setup: BASE + lines(`add chain ${T} f { type filter hook input priority 0 ; }`),
    tx: lines(`add chain ${T} f`, `delete chain ${T} f`, `add chain ${T} f { type filter hook input priority 10 ; }`),
    expect: 'ok',
    after: ['add chain ip kube-proxy f { type filter hook input priority 10 ; }'],
  },
  {
    name: 'a plain add of an existing base chain is fine',
    setup: BASE + lines(`add chain ${T} f { type filter hook input priority 0 ; }`),
    tx: lines(`add chain ${T} f`),
    expect: 'ok',
  },
  {
    name: 'a failed transaction changes nothing',
    setup: BASE,
    tx: lines(`add chain ${T} new`, `add rule ${T} new accept`, `delete chain ${T} nope`),
    expect: 'not-found',
    line: 3,
    after: ['!add chain ip kube-proxy new'],
  },
  {
    name: 'flush table empties chains but keeps set and map elements',
    setup: BASE,
    tx: lines(`flush table ${T}`),
    expect: 'ok',
    after: ['add element ip kube-proxy m { 1.2.3.4 comment "x" : goto b }', '!add rule ip kube-proxy a jump b'],
  },
  // Rules and elements in blocks (transaction.ts): nft 1.0.6 reads them with its table list alone.
  {
    name: 'rules in a chain block are appended to the chain',
    setup: BASE,
    tx: lines(`add chain ${T} b { ip saddr 1.1.1.1 drop ; jump a ; }`),
    expect: 'ok',
    after: ['add rule ip kube-proxy b ip saddr 1.1.1.1 drop', 'add rule ip kube-proxy b jump a'],
  },
  {
    name: 'elements in a map block are added as by add element',
    setup: BASE,
    tx: lines(`add map ${T} m { type ipv4_addr : verdict ; elements = { 5.5.5.5 : drop , 1.2.3.4 : goto b } ; }`),
    expect: 'ok',
    after: ['add element ip kube-proxy m { 5.5.5.5 : drop }'],
  },
  {
    name: 'an element block with another value for a key is "File exists"',
    setup: BASE,
    tx: lines(`add map ${T} m { type ipv4_addr : verdict ; elements = { 1.2.3.4 : drop } ; }`),
    expect: 'exists',
    line: 1,
  },
  {
    name: 'without its cache nft knows no set: a rule block naming an undeclared set is refused',
    setup: BASE,
    tx: lines(`add chain ${T} b { ip saddr @s drop ; }`),
    expect: 'not-found',
    line: 1,
  },
  {
    name: 'a set declared earlier in the transaction can be named',
    setup: BASE,
    tx: lines(`add set ${T} s { type ipv4_addr ; flags dynamic,timeout ; timeout 10s ; }`, `add chain ${T} b { ip saddr @s drop ; }`),
    expect: 'ok',
  },
  {
    name: 'a delete makes nft load its cache, and then every set can be named',
    setup: BASE,
    tx: lines(`delete element ${T} m { 1.2.3.4 }`, `add chain ${T} b { ip saddr @s drop ; }`),
    expect: 'ok',
  },
  // Named counters (--traffic-counters, counters.ts).
  {
    name: 'a rule counting into a missing counter is refused',
    setup: BASE,
    tx: lines(`add chain ${T} e { meta l4proto tcp counter name "c" dnat to 10.0.0.1:80 ; }`),
    expect: 'not-found',
    line: 1,
  },
  {
    name: 'a counter added earlier in the transaction can be counted into, by a rule block without the cache',
    setup: BASE,
    tx: lines(`add counter ${T} c`, `add chain ${T} e`, `add chain ${T} e { meta l4proto tcp counter name "c" dnat to 10.0.0.1:80 ; }`),
    expect: 'ok',
    after: ['add counter ip kube-proxy c', 'add rule ip kube-proxy e meta l4proto tcp counter name "c" dnat to 10.0.0.1:80'],
  },
  {
    name: 'a counter a rule counts into is busy',
    setup: BASE + lines(`add counter ${T} c`, `add chain ${T} e { meta l4proto tcp counter name "c" dnat to 10.0.0.1:80 ; }`),
    tx: lines(`delete counter ${T} c`),
    expect: 'busy',
    line: 1,
  },
  {
    name: 'a counter can go once the rule counting into it is flushed in the same transaction',
    setup: BASE + lines(`add counter ${T} c`, `add chain ${T} e { meta l4proto tcp counter name "c" dnat to 10.0.0.1:80 ; }`),
    tx: lines(`flush chain ${T} e`, `delete counter ${T} c`),
    expect: 'ok',
    after: ['!add counter'],
  },
  {
    name: 'add + delete of a counter that is not there is fine; deleting it alone is "No such file or directory"',
    setup: BASE,
    tx: lines(`add counter ${T} c`, `delete counter ${T} c`, `delete counter ${T} c`),
    expect: 'not-found',
    line: 3,
  },
  { name: 'the whole table can be deleted', setup: BASE, tx: lines(`delete table ${T}`), expect: 'ok', after: ['!add table'] },
  { name: 'a missing table cannot be deleted', setup: '', tx: lines(`delete table ${T}`), expect: 'not-found', line: 1 },
  {
    name: "generation B's objects load: the 4-field hairpin set, its masquerade rule, the inline mark and the numgen DNAT map",
    setup: BASE_B,
    tx: lines(
      `add element ${T} hairpin-connections { 10.0.0.1 . 10.0.0.1 . tcp . 80 }`,
      `add rule ${T} masquerading mark and 0x00004000 != 0 mark set mark xor 0x00004000 masquerade fully-random`,
      `add rule ${T} masquerading ct status dnat ip saddr . ip daddr . meta l4proto . th dport @hairpin-connections masquerade fully-random`,
      `add rule ${T} svc ip saddr != 10.0.0.0/8 mark set mark or 0x00004000`,
      `add rule ${T} svc meta l4proto tcp dnat ip addr . port to numgen random mod 2 map { 0 : 10.0.0.1 . 80 , 1 : 10.0.0.2 . 80 }`,
    ),
    expect: 'ok',
    after: ['hairpin-connections { 10.0.0.1 . 10.0.0.1 . tcp . 80 }', 'map { 0 : 10.0.0.1 . 80 , 1 : 10.0.0.2 . 80 }'],
  },
  {
    name: 'a hairpin-connections element with 3 fields of 4 is a datatype mismatch',
    setup: BASE_B,
    tx: lines(`add element ${T} hairpin-connections { 10.0.0.1 . tcp . 80 }`),
    expect: 'other',
    line: 1,
  },
  {
    name: 'deleting an element of the wrong width is a datatype mismatch too, even in a map',
    setup: BASE_B,
    tx: lines(`add element ${T} m { 1.2.3.5 : goto b }`, `delete element ${T} hairpin-connections { 10.0.0.1 . 10.0.0.1 . tcp }`),
    expect: 'other',
    line: 2,
  },
  {
    name: 'an IPv6 address in an ipv4_addr field is refused',
    setup: BASE_B,
    tx: lines(`add element ${T} hairpin-connections { fd00::1 . 10.0.0.1 . tcp . 80 }`),
    expect: 'other',
    line: 1,
  },
  {
    name: 'the hairpin set is busy while the masquerading rule reads it',
    setup:
      BASE_B +
      lines(`add rule ${T} masquerading ct status dnat ip saddr . ip daddr . meta l4proto . th dport @hairpin-connections masquerade fully-random`),
    tx: lines(`delete set ${T} hairpin-connections`),
    expect: 'busy',
    line: 1,
  },
];
