/**
 * One canonical text per rule, close to what `nft list` prints (nft 1.0.6,
 * measured): `meta mark set meta mark | 0x00004000`, `meta mark & 0x00004000
 * == 0x00000000`, anonymous sets sorted by address and a one-element set
 * printed as its element, an anonymous set of prefixes (or ranges) merged
 * where its intervals overlap or touch, as the kernel stores it,
 * `iifname "cbr0"`, vmap entries joined by ", ".
 * Text we write and JSON nft lists both go through here, so the desired and
 * the live table compare equal right after an apply (normalizeRule).
 */
import { addressInterval, formatInterval, mergeIntervals, parseCIDR, parseIP, type AddressInterval } from '../proxier/ip.ts';
import type { Expr, Rule, Stmt, Value, Verdict } from './rule-ast.ts';
import { parseRule } from './rule-text.ts';

const hex8 = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`;

function isMark(e: Expr): boolean {
  return (e.k === 'meta' && e.key === 'mark') || (e.k === 'binop' && isMark(e.left));
}

export function printExpr(e: Expr): string {
  switch (e.k) {
    case 'payload':
      return `${e.proto} ${e.field}`;
    case 'meta':
      return e.key === 'iifname' || e.key === 'oifname' || e.key === 'iif' || e.key === 'oif' ? e.key : `meta ${e.key}`;
    case 'ct':
      return `ct ${e.key}`;
    case 'fib':
      return `fib ${e.flags.join(' . ')} ${e.result}`;
    case 'numgen':
      return `numgen ${e.mode} mod ${e.mod}${e.offset ? ` offset ${e.offset}` : ''}`;
    case 'concat':
      return e.items.map(printExpr).join(' . ');
    case 'binop':
      return `${printExpr(e.left)} ${e.op} ${isMark(e.left) ? hex8(e.right) : e.right}`;
  }
}

/** Canonical literal: addresses and prefixes normalised, numbers in decimal (hex for marks). */
function literal(text: string, left: Expr | null): string {
  if (left && isMark(left) && /^(0x[0-9a-f]+|\d+)$/i.test(text)) return hex8(/^0x/i.test(text) ? Number.parseInt(text, 16) : Number(text));
  if (left && left.k === 'meta' && ['iifname', 'oifname', 'iif', 'oif'].includes(left.key)) return `"${text}"`;
  if (text.includes('/')) return parseCIDR(text)?.text ?? text;
  return parseIP(text)?.text ?? text;
}

/** Sort key: address bytes (then prefix length), else the text. */
function sortKey(text: string): string {
  const c = text.includes('/') ? parseCIDR(text) : null;
  const ip = c ? c.network : parseIP(text);
  if (!ip) return `~${text}`;
  return `${ip.family}:${Array.from(ip.bytes, (b) => b.toString(16).padStart(2, '0')).join('')}/${String(c ? c.prefix : 999).padStart(3, '0')}`;
}

/**
 * An anonymous set holding a prefix or a range is an interval set: the kernel merges what overlaps or touches, and nft
 * lists the result (`{ 10.0.0.0/24, 10.0.1.0/24 }` -> `10.0.0.0/23`, `{ 10.0.0.0/24, 10.0.1.0/25 }` ->
 * `10.0.0.0-10.0.1.127`). Null when the items are not all addresses, prefixes and ranges of one family.
 */
function mergedInterval(items: readonly string[]): string[] | null {
  if (!items.some((i) => i.includes('/') || i.includes('-'))) return null;
  const intervals: AddressInterval[] = [];
  for (const item of items) {
    const i = addressInterval(item);
    if (i === null || (intervals.length > 0 && intervals[0]!.family !== i.family)) return null;
    intervals.push(i);
  }
  return mergeIntervals(intervals).map(formatInterval);
}

function printValue(v: Value, left: Expr): string {
  if (v.k === 'setref') return `@${v.name}`;
  if (v.k === 'lit') return literal(v.text, left);
  const merged = mergedInterval(v.items);
  if (merged !== null) return merged.length === 1 ? merged[0]! : `{ ${merged.join(', ')} }`;
  const items = [...new Set(v.items.map((i) => literal(i, left)))].sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : sortKey(a) > sortKey(b) ? 1 : 0));
  return items.length === 1 ? items[0]! : `{ ${items.join(', ')} }`;
}

export function printVerdict(v: Verdict): string {
  return v.k === 'jump' || v.k === 'goto' ? `${v.k} ${v.target}` : v.k;
}

function printStmt(s: Stmt): string {
  switch (s.k) {
    case 'match': {
      const op = s.op === '!=' ? '!= ' : s.left.k === 'binop' ? '== ' : '';
      return `${printExpr(s.left)} ${op}${printValue(s.right, s.left)}`;
    }
    case 'vmap':
      return typeof s.map === 'string'
        ? `${printExpr(s.key)} vmap @${s.map}`
        : `${printExpr(s.key)} vmap { ${s.map.map(([k, v]) => `${k} : ${printVerdict(v)}`).join(', ')} }`;
    case 'verdict':
      return printVerdict(s.verdict);
    case 'reject':
      return 'reject';
    case 'mark':
      return `meta mark set ${typeof s.value === 'number' ? hex8(s.value) : printExpr(s.value)}`;
    case 'masquerade':
      return s.fullyRandom ? 'masquerade fully-random' : 'masquerade';
    case 'dnat': {
      const addr = s.addr.includes(':') ? `[${parseIP(s.addr)?.text ?? s.addr}]` : (parseIP(s.addr)?.text ?? s.addr);
      return `dnat to ${addr}${s.port === null ? '' : `:${s.port}`}`;
    }
    case 'dnatmap':
      // As nft 1.0.6 lists it (measured): no `addr . port` after the family, entries joined by ", ".
      return `dnat ${s.family} to ${printExpr(s.key)} map { ${s.map.map(([k, t]) => `${k} : ${parseIP(t.addr)?.text ?? t.addr} . ${t.port}`).join(', ')} }`;
    case 'setupdate':
      return `${s.op} @${s.set} { ${printExpr(s.elem)} }`;
    case 'counter':
      return `counter name "${s.name}"`;
    case 'raw':
      return s.text;
  }
}

export function printRule(rule: Rule): string {
  const body = rule.stmts.map(printStmt).join(' ');
  return rule.comment === null ? body : `${body} comment "${rule.comment}"`;
}

/** The canonical text of a rule we wrote (or that nft listed). */
export function normalizeRule(text: string): string {
  return printRule(parseRule(text));
}
