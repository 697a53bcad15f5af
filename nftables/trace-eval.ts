/**
 * How one traced packet fares against the expressions and values of a rule:
 * header fields, meta keys, conntrack state (always "new": the tracer follows
 * a connection's first packet), fib address types, set and map lookups with
 * prefix elements, interface-name wildcards. Pure.
 */
import { addressInterval, intervalContains, parseIP } from '../proxier/ip.ts';
import type { Protocol } from '../proxier/types.ts';
import type { NftElement, NftTable } from './model.ts';
import type { Expr, Value } from './rule-ast.ts';

export interface PacketState {
  readonly family: 'ip' | 'ip6';
  src: string;
  dst: string;
  readonly protocol: Protocol;
  dport: number;
  readonly sport: number;
  readonly inInterface: string | null;
  mark: number;
  /** The connection's `ct status dnat` bit: a DNAT rule rewrote the destination (nf_nat_setup_info's IPS_DST_NAT). */
  dnatted: boolean;
}

export interface EvalContext {
  readonly table: NftTable;
  readonly localAddresses: readonly string[];
  /** Affinity sets that already hold the client (their contents are packet-path state). */
  readonly affinityHits: ReadonlySet<string>;
  /** Element index per set/map name (built once per trace). */
  readonly index: (set: string) => ReadonlyMap<string, NftElement> | null;
  readonly warn: (message: string) => void;
}

/** A field's value: text (address, protocol, interface) or a number. */
export type FieldValue = string | number | null;

export function isLocal(ctx: EvalContext, ip: string): boolean {
  const p = parseIP(ip);
  if (!p) return false;
  if (p.family === 'IPv4' ? p.bytes[0] === 127 : p.text === '::1') return true;
  return ctx.localAddresses.some((a) => parseIP(a)?.text === p.text);
}

export function fieldValue(e: Expr, pkt: PacketState, ctx: EvalContext): FieldValue {
  switch (e.k) {
    case 'payload':
      if (e.proto === 'th') return e.field === 'dport' ? pkt.dport : e.field === 'sport' ? pkt.sport : null;
      if (e.proto !== pkt.family) return null;
      return e.field === 'saddr' ? pkt.src : e.field === 'daddr' ? pkt.dst : null;
    case 'meta':
      if (e.key === 'l4proto') return pkt.protocol.toLowerCase();
      if (e.key === 'mark') return pkt.mark;
      if (e.key === 'iifname' || e.key === 'iif') return pkt.inInterface ?? '';
      return null;
    case 'ct':
      // A first packet: state new; of the status bits only dnat can be set before postrouting's masquerade.
      return e.key === 'state' ? 'new' : e.key === 'status' ? (pkt.dnatted ? 'dnat' : '') : null;
    case 'fib':
      if (e.result !== 'type' || e.flags.length !== 1) return null;
      return isLocal(ctx, e.flags[0] === 'saddr' ? pkt.src : pkt.dst) ? 'local' : 'unicast';
    case 'binop': {
      const l = fieldValue(e.left, pkt, ctx);
      if (typeof l !== 'number') return null;
      return e.op === '&' ? (l & e.right) >>> 0 : e.op === '|' ? (l | e.right) >>> 0 : (l ^ e.right) >>> 0;
    }
    case 'concat': {
      const parts = e.items.map((i) => fieldValue(i, pkt, ctx));
      return parts.some((p) => p === null) ? null : parts.join(' . ');
    }
    case 'numgen':
      return null;
  }
}

/** Whether one literal (as written in a rule or an element key part) matches a field value. */
export function literalMatches(lit: string, v: FieldValue, left: Expr): boolean {
  if (v === null) return false;
  if (typeof v === 'number') return /^0x/i.test(lit) ? Number.parseInt(lit, 16) === v : Number(lit) === v;
  if (left.k === 'meta' && (left.key === 'iifname' || left.key === 'iif')) {
    return lit.endsWith('*') ? v.startsWith(lit.slice(0, -1)) : lit === v;
  }
  const ip = parseIP(v);
  if (ip) {
    // An address, a prefix, or a range as the kernel lists an interval set's merged elements.
    const covers = addressInterval(lit);
    return covers !== null && intervalContains(covers, ip);
  }
  return lit === v;
}

/** Concatenated key parts: each part compared on its own (a part may be a prefix). */
function keyMatches(key: string, v: FieldValue, left: Expr): boolean {
  if (left.k !== 'concat' || typeof v !== 'string') return literalMatches(key, v, left);
  const want = key.split(' . ');
  const have = v.split(' . ');
  return want.length === have.length && want.every((w, i) => literalMatches(w, have[i]!, left.items[i]!));
}

/** Looks a value up in a named set or map: exact key first, then prefix elements. */
export function lookup(set: string, left: Expr, v: FieldValue, ctx: EvalContext): NftElement | null {
  if (v === null) return null;
  const idx = ctx.index(set);
  if (idx === null) {
    ctx.warn(`set or map ${set} is not in the table`);
    return null;
  }
  const exact = idx.get(String(v));
  if (exact) return exact;
  for (const e of idx.values()) if (e.key.includes('/') && keyMatches(e.key, v, left)) return e;
  return null;
}

export function valueMatches(left: Expr, right: Value, v: FieldValue, ctx: EvalContext): boolean {
  if (right.k === 'lit') return literalMatches(right.text, v, left);
  if (right.k === 'anon') return right.items.some((i) => literalMatches(i, v, left));
  if (right.name.startsWith('affinity-')) return typeof v === 'string' && ctx.affinityHits.has(right.name);
  return lookup(right.name, left, v, ctx) !== null;
}

/** Canonical address text of a packet field (so map keys written by the renderer match). */
export function canonicalAddress(ip: string): string {
  return parseIP(ip)?.text ?? ip;
}
