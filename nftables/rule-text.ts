/**
 * Reads nft rule text into a Rule: the statements kube-proxy writes
 * ("ip daddr 172.30.0.41 ip saddr != 10.0.0.0/8 jump mark-for-masquerade",
 * "numgen random mod 2 vmap { 0 : goto a , 1 : goto b }", "mark set mark or
 * 0x4000", ...) and the forms nft lists them in ("meta mark set meta mark |
 * 0x00004000", "iifname \"cbr0\"", "{ a, b }"). Anything else is an error
 * naming the word, so an unknown shape is noticed rather than misread.
 */
import type { Expr, Rule, Stmt, Value, Verdict } from './rule-ast.ts';

export class RuleSyntaxError extends Error {
  constructor(rule: string, reason: string) {
    super(`cannot read nft rule ${JSON.stringify(rule)}: ${reason}`);
    this.name = 'RuleSyntaxError';
  }
}

/** Words, quoted strings, and `{ } ,` as tokens of their own. */
export function tokenize(text: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch === ' ' || ch === '\t') i++;
    else if (ch === '{' || ch === '}' || ch === ',') out.push(text[i++]!);
    else if (ch === '"') {
      const end = text.indexOf('"', i + 1);
      if (end < 0) throw new Error('unterminated string');
      out.push(text.slice(i, end + 1));
      i = end + 1;
    } else {
      let j = i;
      while (j < text.length && !' \t{},"'.includes(text[j]!)) j++;
      out.push(text.slice(i, j));
      i = j;
    }
  }
  return out;
}

const VERDICT_WORDS = new Set(['accept', 'drop', 'return', 'continue']);
const BINOPS: Readonly<Record<string, '&' | '|' | '^'>> = { and: '&', '&': '&', or: '|', '|': '|', xor: '^', '^': '^' };
const BARE_META = new Set(['mark', 'iifname', 'oifname', 'iif', 'oif', 'l4proto', 'nfproto']);

class Reader {
  private i = 0;
  private readonly toks: readonly string[];
  constructor(toks: readonly string[]) {
    this.toks = toks;
  }
  peek(o = 0): string | undefined {
    return this.toks[this.i + o];
  }
  next(what: string): string {
    const t = this.toks[this.i++];
    if (t === undefined) throw new Error(`expected ${what}, found the end`);
    return t;
  }
  expect(word: string): void {
    const t = this.next(`"${word}"`);
    if (t !== word) throw new Error(`expected "${word}", found "${t}"`);
  }
  done(): boolean {
    return this.i >= this.toks.length;
  }
}

export function parseNumber(t: string): number {
  const n = /^0x[0-9a-f]+$/i.test(t) ? Number.parseInt(t, 16) : /^\d+$/.test(t) ? Number(t) : Number.NaN;
  if (Number.isNaN(n)) throw new Error(`expected a number, found "${t}"`);
  return n;
}

function primary(r: Reader): Expr {
  const t = r.next('an expression');
  if (t === 'ip' || t === 'ip6' || t === 'th') return { k: 'payload', proto: t, field: r.next('a header field') };
  if (t === 'meta') return { k: 'meta', key: r.next('a meta key') };
  if (BARE_META.has(t)) return { k: 'meta', key: t };
  if (t === 'ct') return { k: 'ct', key: r.next('a ct key') };
  if (t === 'fib') {
    const flags: string[] = [r.next('fib flags')];
    while (r.peek() === '.') {
      r.next('.');
      flags.push(r.next('fib flags'));
    }
    return { k: 'fib', flags, result: r.next('a fib result') };
  }
  if (t === 'numgen') {
    const mode = r.next('numgen mode');
    r.expect('mod');
    const mod = parseNumber(r.next('a modulus'));
    let offset = 0;
    if (r.peek() === 'offset') {
      r.next('offset');
      offset = parseNumber(r.next('an offset'));
    }
    return { k: 'numgen', mode, mod, offset };
  }
  throw new Error(`unknown expression "${t}"`);
}

function expression(r: Reader): Expr {
  let e = primary(r);
  const op = BINOPS[r.peek() ?? ''];
  if (op !== undefined) {
    r.next('operator');
    e = { k: 'binop', op, left: e, right: parseNumber(r.next('a number')) };
  }
  if (r.peek() !== '.') return e;
  const items = [e];
  while (r.peek() === '.') {
    r.next('.');
    items.push(primary(r));
  }
  return { k: 'concat', items };
}

function verdict(r: Reader): Verdict {
  const t = r.next('a verdict');
  if (t === 'jump' || t === 'goto') return { k: t, target: r.next('a chain name') };
  if (VERDICT_WORDS.has(t)) return { k: t as 'accept' };
  throw new Error(`expected a verdict, found "${t}"`);
}

/** `{ a, b }` items until "}". */
function braced<T>(r: Reader, item: () => T): T[] {
  r.expect('{');
  const out: T[] = [];
  while (r.peek() !== '}') {
    out.push(item());
    if (r.peek() === ',') r.next(',');
  }
  r.next('}');
  return out;
}

function value(r: Reader): Value {
  const t = r.peek();
  if (t === '{') return { k: 'anon', items: braced(r, () => r.next('a set element')) };
  r.next('a value');
  if (t!.startsWith('@')) return { k: 'setref', name: t!.slice(1) };
  return { k: 'lit', text: t!.startsWith('"') ? t!.slice(1, -1) : t! };
}

/** Words an expression starts with (a DNAT target that is one is a map's key, not an address). */
const EXPR_WORDS = new Set(['ip', 'ip6', 'th', 'meta', 'ct', 'fib', 'numgen']);
const DNAT_TARGET = /^(?:\[([^\]]+)\]|([^:\s]+))(?::(\d+))?$/;

/**
 * `dnat to 10.0.0.1:80` / `dnat to [fd00::1]:80`, or generation B's map form: `dnat ip addr . port to numgen random
 * mod 2 map { 0 : 10.0.0.1 . 80 , 1 : 10.0.0.2 . 80 }`, which nft 1.0.6 lists as `dnat ip to numgen ... map { ... }`.
 */
function dnat(r: Reader): Stmt {
  r.next('dnat');
  const family = r.peek() === 'ip' || r.peek() === 'ip6' ? (r.next('a family') as 'ip' | 'ip6') : null;
  if (r.peek() === 'addr') {
    r.next('addr');
    r.expect('.');
    r.expect('port');
  }
  r.expect('to');
  const target = r.peek() ?? '';
  if (!EXPR_WORDS.has(target) && !BARE_META.has(target)) {
    const m = DNAT_TARGET.exec(r.next('a DNAT target'));
    if (!m) throw new Error('bad DNAT target');
    return { k: 'dnat', addr: m[1] ?? m[2]!, port: m[3] === undefined ? null : Number(m[3]) };
  }
  const key = expression(r);
  r.expect('map');
  const map = braced(r, () => {
    const k = r.next('a key');
    r.expect(':');
    const addr = r.next('an address').replace(/^\[(.*)\]$/, '$1');
    r.expect('.');
    return [k, { addr, port: parseNumber(r.next('a port')) }] as const;
  });
  if (map.length === 0) throw new Error('empty DNAT map');
  return { k: 'dnatmap', family: family ?? (map[0]![1].addr.includes(':') ? 'ip6' : 'ip'), key, map };
}

function statement(r: Reader): Stmt {
  const t = r.peek()!;
  if (t === 'jump' || t === 'goto' || VERDICT_WORDS.has(t)) return { k: 'verdict', verdict: verdict(r) };
  if (t === 'reject' || t === 'masquerade') {
    r.next(t);
    if (t === 'reject') return { k: 'reject' };
    const fullyRandom = r.peek() === 'fully-random';
    if (fullyRandom) r.next('fully-random');
    return { k: 'masquerade', fullyRandom };
  }
  if (t === 'dnat') return dnat(r);
  if (t === 'counter' && r.peek(1) === 'name') {
    r.next('counter');
    r.next('name');
    const name = r.next('a counter name');
    return { k: 'counter', name: name.startsWith('"') ? name.slice(1, -1) : name };
  }
  if (t === 'update' || t === 'add') {
    r.next(t);
    const set = r.next('a set');
    if (!set.startsWith('@')) throw new Error(`expected @set after ${t}`);
    r.expect('{');
    const elem = expression(r);
    r.expect('}');
    return { k: 'setupdate', op: t, set: set.slice(1), elem };
  }
  const left = expression(r);
  if (r.peek() === 'set') {
    r.next('set');
    const v = r.peek() !== undefined && /^(0x[0-9a-f]+|\d+)$/i.test(r.peek()!) ? parseNumber(r.next('a number')) : expression(r);
    return { k: 'mark', value: v };
  }
  if (r.peek() === 'vmap') {
    r.next('vmap');
    if (r.peek()?.startsWith('@')) return { k: 'vmap', key: left, map: r.next('a map').slice(1) };
    const entries = braced(r, () => {
      const k = r.next('a key');
      r.expect(':');
      return [k, verdict(r)] as const;
    });
    return { k: 'vmap', key: left, map: entries };
  }
  let op: '==' | '!=' = '==';
  if (r.peek() === '==' || r.peek() === '!=') op = r.next('operator') as '==' | '!=';
  return { k: 'match', left, op, right: value(r) };
}

export function parseRule(text: string): Rule {
  try {
    const toks = tokenize(text);
    let comment: string | null = null;
    const ci = toks.indexOf('comment');
    if (ci >= 0) {
      const c = toks[ci + 1];
      if (c === undefined || !c.startsWith('"') || ci + 2 !== toks.length) throw new Error('a comment must be a quoted string at the end');
      comment = c.slice(1, -1);
      toks.length = ci;
    }
    const r = new Reader(toks);
    const stmts: Stmt[] = [];
    while (!r.done()) stmts.push(statement(r));
    return { stmts, comment };
  } catch (err) {
    throw new RuleSyntaxError(text, (err as Error).message);
  }
}
