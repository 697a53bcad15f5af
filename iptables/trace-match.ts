/**
 * Whether one rule's matches hold for a packet, evaluated as netfilter does
 * for the first packet of a connection: addresses and prefixes, interfaces
 * with the `+` wildcard, ports and port ranges, address types against the
 * node's addresses, the packet mark, conntrack state (NEW, plus DNAT once a
 * DNAT happened; UNTRACKED after raw's CT --notrack), the output interface
 * (from the node's routes, when the tracer has them), `recent` lists (empty unless named in recentHits), and
 * `statistic --mode random`, which makes the trace fork. What the tracer
 * cannot evaluate is assumed to match and reported through `warn`.
 */
import { cidrContains, isLoopback, parseIP, parseIPOrCIDR } from '../proxier/ip.ts';
import type { Protocol } from '../proxier/types.ts';
import { address, canonicalProbability, parseNumber } from './rule-normalize.ts';
import { protocolName, type MatchSection, type RuleOption, type RuleWords } from './rule-words.ts';

/** The packet as it is at some point of its way through the hooks. */
export interface PacketState {
  readonly src: string;
  readonly dst: string;
  readonly protocol: Protocol;
  readonly dport: number;
  readonly sport: number | null;
  readonly origin: 'external' | 'local';
  /** Input interface; null for packets generated on the node (or when not given). */
  readonly inInterface: string | null;
  /** Output interface from the route to dst, in OUTPUT, FORWARD and POSTROUTING; null elsewhere or when unknown. */
  readonly outInterface: string | null;
  readonly mark: number;
  /** A DNAT (or REDIRECT) happened: conntrack state DNAT. */
  readonly dnatted: boolean;
  /** raw's CT --notrack (or NOTRACK) hit: conntrack state UNTRACKED, and no nat chain sees the packet. */
  readonly untracked: boolean;
}

export interface MatchContext {
  readonly isLocal: (ip: string) => boolean;
  /** `recent` lists that hold the packet's source (affinity already established). */
  readonly recentHits: ReadonlySet<string>;
  /** The node's routes are known: a packet without an output interface has none (rather than an unknown one). */
  readonly routed: boolean;
  /** Reports something the tracer had to assume. */
  readonly warn: (message: string) => void;
}

/** "no", "yes", or a fork: the rule matches with this probability. */
export type MatchOutcome = number;

/** Whether a local address set (plus loopback) holds `ip`. */
export function localAddressTest(localAddresses: readonly string[]): (ip: string) => boolean {
  const set = new Set(localAddresses.map((a) => parseIP(a)?.text ?? a));
  return (ip) => {
    const p = parseIP(ip);
    return p !== null && (isLoopback(p) || set.has(p.text));
  };
}

const inCIDR = (value: string, ip: string): boolean => {
  const cidr = parseIPOrCIDR(address(value));
  const a = parseIP(ip);
  return cidr !== null && a !== null && cidrContains(cidr, a);
};

const interfaceMatches = (pattern: string, name: string | null): boolean =>
  name !== null && (pattern.endsWith('+') ? name.startsWith(pattern.slice(0, -1)) : name === pattern);

function portMatches(spec: string, port: number | null): boolean {
  if (port === null) return false;
  return spec.split(',').some((part) => {
    const [lo, hi] = part.split(':');
    const from = lo === '' || lo === undefined ? 0 : Number(lo);
    const to = hi === undefined ? from : hi === '' ? 65535 : Number(hi);
    return port >= from && port <= to;
  });
}

function markMatches(spec: string, mark: number): boolean {
  const [v, m] = spec.split('/');
  const value = parseNumber(v ?? '') ?? Number.NaN;
  const mask = m === undefined ? 0xffffffff : (parseNumber(m) ?? Number.NaN);
  return (mark & mask) >>> 0 === value >>> 0;
}

function addrTypeMatches(types: string, ip: string, ctx: MatchContext): boolean {
  const local = ctx.isLocal(ip);
  const multicast = inCIDR('224.0.0.0/4', ip) || inCIDR('ff00::/8', ip);
  return types.split(',').some((t) => {
    switch (t.toUpperCase()) {
      case 'LOCAL':
        return local;
      case 'UNICAST':
        return !local && !multicast;
      case 'MULTICAST':
        return multicast;
      case 'BROADCAST':
        return ip === '255.255.255.255';
      default:
        ctx.warn(`address type ${t} is not modelled; assumed not to match`);
        return false;
    }
  });
}

/** One option's raw test (negation not applied): true/false, a probability (statistic), or null when it tests nothing. */
function optionTest(module: string, o: RuleOption, pkt: PacketState, ctx: MatchContext, section: MatchSection): boolean | number | null {
  const v = o.values[0] ?? '';
  switch (`${module} ${o.name}`) {
    case 'tcp --dport':
    case 'udp --dport':
    case 'sctp --dport':
    case 'multiport --dports':
      return portMatches(v, pkt.dport);
    case 'tcp --sport':
    case 'udp --sport':
    case 'sctp --sport':
    case 'multiport --sports':
      if (pkt.sport !== null) return portMatches(v, pkt.sport);
      ctx.warn(`${o.name} ${v} tested but the packet has no source port; assumed to match`);
      return null;
    case 'multiport --ports':
      return portMatches(v, pkt.dport) || portMatches(v, pkt.sport);
    case 'tcp --syn':
      return true; // the first packet of a TCP connection is a SYN
    case 'mark --mark':
      return markMatches(v, pkt.mark);
    case 'connmark --mark':
      return markMatches(v, 0); // a new connection carries no mark
    case 'conntrack --ctstate':
    case 'state --state':
      if (pkt.untracked) return v.split(',').includes('UNTRACKED');
      return v.split(',').some((st) => st === 'NEW' || (st === 'DNAT' && pkt.dnatted));
    case 'addrtype --src-type':
      return addrTypeMatches(v, pkt.src, ctx);
    case 'addrtype --dst-type':
      return addrTypeMatches(v, pkt.dst, ctx);
    case 'statistic --probability':
      return Number(canonicalProbability(v));
    case 'statistic --mode':
      if (v !== 'random') ctx.warn(`-m statistic --mode ${v} is not modelled; assumed to match`);
      return null;
    case 'recent --rcheck':
    case 'recent --update':
    case 'recent --remove':
      return ctx.recentHits.has(section.options.find((x) => x.name === '--name')?.values[0] ?? 'DEFAULT');
    case 'comment --comment':
    case 'nfacct --nfacct-name':
      return null;
    default:
      // recent --set (records nothing here), --name, --seconds, --reap, --mask, --rsource qualify the tests above.
      if (module === 'recent') return null;
      ctx.warn(`-m ${module} ${o.name} is not modelled; assumed to match`);
      return null;
  }
}

const MODELLED = new Set([
  'tcp',
  'udp',
  'sctp',
  'multiport',
  'comment',
  'nfacct',
  'mark',
  'connmark',
  'conntrack',
  'state',
  'addrtype',
  'statistic',
  'recent',
]);

function basicTest(b: RuleOption, pkt: PacketState, ctx: MatchContext): boolean | null {
  const v = b.values[0] ?? '';
  switch (b.name) {
    case '-p': {
      const p = protocolName(v);
      return p === 'all' || p === '0' || p === pkt.protocol.toLowerCase();
    }
    case '-s':
      return inCIDR(v, pkt.src);
    case '-d':
      return inCIDR(v, pkt.dst);
    case '-i':
      if (pkt.inInterface === null && pkt.origin === 'external')
        ctx.warn(`-i ${v} tested but the packet's input interface is not given; taken as no interface`);
      return interfaceMatches(v, pkt.inInterface);
    case '-o':
      if (pkt.outInterface !== null) return interfaceMatches(v, pkt.outInterface);
      ctx.warn(
        ctx.routed
          ? `${b.negated ? '! ' : ''}-o ${v} tested but no route to ${pkt.dst} names a device; assumed to match`
          : `${b.negated ? '! ' : ''}-o ${v} is not modelled (no routing); assumed to match`,
      );
      return null;
    case '-f':
      return false; // the first packet is never a non-first fragment
    default:
      ctx.warn(`${b.negated ? '! ' : ''}${b.name} ${v} is not modelled (no routing); assumed to match`);
      return null;
  }
}

/** Probability that the rule's matches hold: 0 (no), 1 (yes), or in between (statistic: the trace forks). */
export function ruleMatches(words: RuleWords, pkt: PacketState, ctx: MatchContext): MatchOutcome {
  for (const b of words.basic) {
    const holds = basicTest(b, pkt, ctx);
    if (holds !== null && holds === b.negated) return 0;
  }
  let probability = 1;
  for (const m of words.matches) {
    if (!MODELLED.has(m.module)) {
      ctx.warn(`-m ${m.module} is not modelled; assumed to match`);
      continue;
    }
    if ((m.module === 'tcp' || m.module === 'udp' || m.module === 'sctp') && m.module !== pkt.protocol.toLowerCase()) return 0;
    for (const o of m.options) {
      const r = optionTest(m.module, o, pkt, ctx, m);
      if (r === null) continue;
      if (typeof r === 'number') probability *= o.negated ? 1 - r : r;
      else if (r === o.negated) return 0;
    }
  }
  return probability;
}
