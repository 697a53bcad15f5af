/**
 * A canonical form of a rule spec, so that a rule as kube-proxy writes it and
 * the same rule as iptables-save prints it back compare equal. The form is
 * what iptables 1.8.9 (nft and legacy alike) prints, verified in network
 * namespaces: basic options first in the order -s -d -i -o -p -f, addresses
 * with their prefix and host bits cleared, match modules in the order
 * written with their options in the module's own order and defaults filled
 * in, marks in short hex, MARK targets as --set-xmark, probabilities as the
 * kernel stores them (31-bit fraction, 11 decimals), comments as the kernel
 * keeps them (at most 255 bytes). Two deliberate
 * departures from iptables-save's text, both meaning-preserving: repeated
 * protocol matches are merged (iptables-nft does so, legacy does not), and a
 * protocol match without options (`-m tcp` next to `-p tcp`) is dropped, as
 * it matches exactly what `-p tcp` matches.
 */
import type { IPFamily } from '../proxier/types.ts';
import { parseIP, parseIPOrCIDR } from '../proxier/ip.ts';
import { kernelComment } from './comment.ts';
import { BASIC_ORDER, MATCH_OPTIONS, TARGET_OPTIONS } from './rule-options.ts';
import { parseRuleWords, protocolName, quoteWord, tokenizeRule, type MatchSection, type RuleOption, type RuleWords } from './rule-words.ts';

const CT_STATES = ['INVALID', 'NEW', 'RELATED', 'ESTABLISHED', 'UNTRACKED', 'SNAT', 'DNAT'];
const ADDR_TYPES = [
  'UNSPEC',
  'UNICAST',
  'LOCAL',
  'BROADCAST',
  'ANYCAST',
  'MULTICAST',
  'BLACKHOLE',
  'UNREACHABLE',
  'PROHIBIT',
  'THROW',
  'NAT',
  'XRESOLVE',
];
const PROTOCOL_MODULES = new Set(['tcp', 'udp', 'sctp', 'udplite']);
const FULL_MASK = 0xffffffff;

/** The canonical text of a rule spec (see the file comment). Family defaults to the one of the rule's addresses, else IPv4. */
export function normalizeRuleSpec(spec: string, family?: IPFamily): string {
  const words = parseRuleWords(tokenizeRule(spec));
  const fam = family ?? familyOf(words);
  const out: string[] = [];
  for (const name of BASIC_ORDER) {
    const o = words.basic.find((b) => b.name === name);
    if (o) push(out, { ...o, values: o.values.map((v) => basicValue(name, v)) });
  }
  for (const m of mergeProtocolMatches(words.matches)) {
    if (PROTOCOL_MODULES.has(m.module) && m.options.length === 0) continue;
    out.push('-m', m.module);
    for (const o of ordered(withMatchDefaults(m.module, m.options, fam), MATCH_OPTIONS[m.module])) {
      push(out, { ...o, values: o.values.map((v) => matchValue(m.module, o.name, v)) });
    }
  }
  if (words.target !== null) {
    out.push(words.goto ? '-g' : '-j', words.target);
    for (const o of ordered(targetArgs(words.target, words.targetArgs, fam), TARGET_OPTIONS[words.target])) push(out, o);
  }
  return out.map(quoteWord).join(' ');
}

/** Two rule specs are the same rule once normalised (a spec iptables cannot parse equals only itself). */
export function sameRuleSpec(a: string, b: string, family?: IPFamily): boolean {
  if (a === b) return true;
  try {
    return normalizeRuleSpec(a, family) === normalizeRuleSpec(b, family);
  } catch {
    return false;
  }
}

/**
 * Repeated protocol matches as one, at the first one's place: iptables-nft
 * prints `-m tcp --dport 80 -m tcp --sport 5` back as one tcp match,
 * iptables-legacy as two.
 */
function mergeProtocolMatches(matches: readonly MatchSection[]): MatchSection[] {
  const out: MatchSection[] = [];
  for (const m of matches) {
    const first = PROTOCOL_MODULES.has(m.module) ? out.findIndex((x) => x.module === m.module) : -1;
    if (first < 0) out.push(m);
    else out[first] = { ...out[first]!, options: [...out[first]!.options, ...m.options] };
  }
  return out;
}

function push(out: string[], o: RuleOption): void {
  if (o.negated) out.push('!');
  out.push(o.name, ...o.values);
}

function familyOf(words: RuleWords): IPFamily {
  for (const o of words.basic) {
    if ((o.name === '-s' || o.name === '-d') && o.values[0]!.includes(':')) return 'IPv6';
  }
  const to = words.targetArgs.find((o) => o.name === '--to-destination' || o.name === '--to-source');
  return to?.values[0]?.startsWith('[') ? 'IPv6' : 'IPv4';
}

/** Known options in the module's order, then unknown ones as written. */
function ordered(options: readonly RuleOption[], order: readonly string[] | undefined): RuleOption[] {
  if (!order) return [...options];
  const rank = (o: RuleOption): number => (order.includes(o.name) ? order.indexOf(o.name) : order.length);
  return options
    .map((o, i) => ({ o, i }))
    .sort((a, b) => rank(a.o) - rank(b.o) || a.i - b.i)
    .map((x) => x.o);
}

function basicValue(name: string, v: string): string {
  if (name === '-p') return protocolName(v);
  if (name === '-s' || name === '-d') return address(v);
  return v;
}

/** "10.0.0.1" -> "10.0.0.1/32", "5.6.7.8/255.255.0.0" -> "5.6.0.0/16"; unparseable text is kept. */
export function address(v: string): string {
  const slash = v.indexOf('/');
  let text = v;
  if (slash >= 0 && v.slice(slash + 1).match(/[.:]/)) {
    const prefix = maskPrefix(v.slice(slash + 1));
    if (prefix === null) return v;
    text = `${v.slice(0, slash)}/${prefix}`;
  }
  return parseIPOrCIDR(text)?.text ?? v;
}

function maskPrefix(mask: string): number | null {
  const ip = parseIP(mask);
  if (!ip) return null;
  const bits = [...ip.bytes].map((b) => b.toString(2).padStart(8, '0')).join('');
  const ones = bits.length - bits.replace(/^1+/, '').length;
  return /^1*0*$/.test(bits) ? ones : null;
}

/** A number as iptables reads it (strtoul base 0: hex, octal, decimal), or null. */
export function parseNumber(v: string): number | null {
  if (/^0x[0-9a-f]+$/i.test(v)) return Number.parseInt(v.slice(2), 16);
  if (/^0[0-7]+$/.test(v)) return Number.parseInt(v, 8);
  if (/^\d+$/.test(v)) return Number.parseInt(v, 10);
  return null;
}

const hex = (n: number): string => `0x${(n >>> 0).toString(16)}`;

/** "0x00004000/0x00004000" -> "0x4000/0x4000"; a full mask is left out as iptables-save does. */
function markValue(v: string): string {
  const [value, mask] = v.split('/') as [string, string | undefined];
  const n = parseNumber(value);
  const m = mask === undefined ? FULL_MASK : parseNumber(mask);
  if (n === null || m === null) return v;
  return m === FULL_MASK ? hex(n) : `${hex(n)}/${hex(m)}`;
}

function sortedList(v: string, order: readonly string[]): string {
  const items = v.split(',').map((s) => s.toUpperCase());
  return items.sort((a, b) => (order.indexOf(a) >>> 0) - (order.indexOf(b) >>> 0)).join(',');
}

/** The probability the kernel keeps: a 31-bit fraction, printed with 11 decimals. */
export function canonicalProbability(v: string): string {
  const p = Number(v);
  if (!Number.isFinite(p)) return v;
  return (Math.round(p * 0x80000000) / 0x80000000).toFixed(11);
}

function matchValue(module: string, option: string, v: string): string {
  if (option === '--mark' && (module === 'mark' || module === 'connmark')) return markValue(v);
  if (option === '--ctstate' || option === '--state') return sortedList(v, CT_STATES);
  if (option === '--src-type' || option === '--dst-type') return sortedList(v, ADDR_TYPES);
  if (option === '--probability') return canonicalProbability(v);
  // What the kernel keeps of a comment (255 bytes of UTF-8): a long one converges once written.
  if (module === 'comment' && option === '--comment') return kernelComment(v);
  if (module === 'recent' && option === '--mask') return parseIP(v)?.text ?? v;
  return v;
}

function withMatchDefaults(module: string, options: readonly RuleOption[], family: IPFamily): readonly RuleOption[] {
  if (module !== 'recent') return options;
  const has = (n: string): boolean => options.some((o) => o.name === n);
  const extra: RuleOption[] = [];
  if (!has('--name')) extra.push({ name: '--name', values: ['DEFAULT'], negated: false });
  if (!has('--mask'))
    extra.push({ name: '--mask', values: [family === 'IPv6' ? 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff' : '255.255.255.255'], negated: false });
  if (!has('--rdest') && !has('--rsource')) extra.push({ name: '--rsource', values: [], negated: false });
  return [...options, ...extra];
}

function targetArgs(target: string, args: readonly RuleOption[], family: IPFamily): readonly RuleOption[] {
  const opt = (name: string, ...values: string[]): RuleOption => ({ name, values, negated: false });
  switch (target) {
    case 'MARK':
      return args.map((o) => {
        const xmark = markTarget(o);
        return xmark === null ? o : opt('--set-xmark', xmark);
      });
    case 'CONNMARK':
      if (args.some((o) => o.name === '--save-mark' || o.name === '--restore-mark')) {
        const has = (n: string): boolean => args.some((o) => o.name === n);
        return [
          ...args,
          ...(has('--nfmask') ? [] : [opt('--nfmask', hex(FULL_MASK))]),
          ...(has('--ctmask') ? [] : [opt('--ctmask', hex(FULL_MASK))]),
        ];
      }
      return args;
    case 'REJECT':
      return args.some((o) => o.name === '--reject-with')
        ? args
        : [...args, opt('--reject-with', family === 'IPv6' ? 'icmp6-port-unreachable' : 'icmp-port-unreachable')];
    case 'DNAT':
    case 'SNAT':
      return args.map((o) => (o.name === '--to-destination' || o.name === '--to-source' ? opt(o.name, natAddress(o.values[0]!)) : o));
    default:
      return args;
  }
}

/** MARK --set-mark / --or-mark / --xor-mark / --and-mark / --set-xmark as the value/mask pair of --set-xmark. */
function markTarget(o: RuleOption): string | null {
  const [value, mask] = (o.values[0] ?? '').split('/') as [string, string | undefined];
  const v = parseNumber(value);
  const m = mask === undefined ? null : parseNumber(mask);
  if (v === null || (mask !== undefined && m === null)) return null;
  switch (o.name) {
    case '--set-xmark':
    case '--set-mark':
      return `${hex(v)}/${hex(m ?? FULL_MASK)}`;
    case '--or-mark':
      return `${hex(v)}/${hex(v)}`;
    case '--xor-mark':
      return `${hex(v)}/0x0`;
    case '--and-mark':
      return `0x0/${hex(~v)}`;
    default:
      return null;
  }
}

/** "[fd00:0::1]:80" -> "[fd00::1]:80"; IPv4 forms are printed back as written. */
function natAddress(v: string): string {
  const m = /^\[([^\]]+)\](.*)$/.exec(v);
  if (!m) return v;
  return `[${parseIP(m[1]!)?.text ?? m[1]}]${m[2]}`;
}
