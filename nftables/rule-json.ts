/**
 * nft's JSON rule form (`nft -j list table`, schema 1) -> Rule. Only the
 * statements kube-proxy writes are understood; anything else becomes a raw
 * statement holding its JSON, so it still shows in a diff and never matches
 * in the tracer.
 */
import type { Expr, Rule, Stmt, Value, Verdict } from './rule-ast.ts';

type J = Record<string, unknown>;
const isObj = (v: unknown): v is J => typeof v === 'object' && v !== null && !Array.isArray(v);

class Unknown extends Error {}

function only(o: unknown): [string, unknown] {
  if (!isObj(o)) throw new Unknown();
  const keys = Object.keys(o);
  if (keys.length !== 1) throw new Unknown();
  return [keys[0]!, o[keys[0]!]];
}

function expr(o: unknown): Expr {
  const [k, v] = only(o);
  const f = isObj(v) ? v : {};
  switch (k) {
    case 'payload':
      if (f['protocol'] !== 'ip' && f['protocol'] !== 'ip6' && f['protocol'] !== 'th') throw new Unknown();
      return { k: 'payload', proto: f['protocol'], field: String(f['field']) };
    case 'meta':
      return { k: 'meta', key: String(f['key']) };
    case 'ct':
      return { k: 'ct', key: String(f['key']) };
    case 'fib':
      return { k: 'fib', flags: Array.isArray(f['flags']) ? f['flags'].map(String) : [String(f['flags'])], result: String(f['result']) };
    case 'numgen':
      return { k: 'numgen', mode: String(f['mode']), mod: Number(f['mod']), offset: Number(f['offset'] ?? 0) };
    case 'concat':
      if (!Array.isArray(v)) throw new Unknown();
      return { k: 'concat', items: v.map(expr) };
    case '&':
    case '|':
    case '^': {
      if (!Array.isArray(v) || v.length !== 2 || typeof v[1] !== 'number') throw new Unknown();
      return { k: 'binop', op: k, left: expr(v[0]), right: v[1] };
    }
  }
  throw new Unknown();
}

/** A literal element: "1.2.3.4", 80, {"prefix": {...}}, {"range": [a, b]} (an interval set's merged intervals). */
export function literalText(o: unknown): string {
  if (typeof o === 'string' || typeof o === 'number') return String(o);
  const [k, v] = only(o);
  if (k === 'prefix' && isObj(v)) return `${String(v['addr'])}/${String(v['len'])}`;
  if (k === 'range' && Array.isArray(v) && v.length === 2) return `${literalText(v[0])}-${literalText(v[1])}`;
  throw new Unknown();
}

function value(o: unknown): Value {
  if (typeof o === 'string' && o.startsWith('@')) return { k: 'setref', name: o.slice(1) };
  if (isObj(o) && 'set' in o) {
    const items = o['set'];
    if (!Array.isArray(items)) throw new Unknown();
    return { k: 'anon', items: items.map(literalText) };
  }
  return { k: 'lit', text: literalText(o) };
}

export function verdictOf(o: unknown): Verdict {
  const [k, v] = only(o);
  if ((k === 'jump' || k === 'goto') && isObj(v)) return { k, target: String(v['target']) };
  if (k === 'accept' || k === 'drop' || k === 'return' || k === 'continue') return { k };
  throw new Unknown();
}

/**
 * Generation B's numgen map DNAT as nft 1.0.6 lists it: `{"family": "ip", "addr": {"map": {"key": {"numgen": ...},
 * "data": {"set": [[0, {"concat": ["10.0.0.1", 80]}], ...]}}}}`.
 */
function dnatMap(f: J): Stmt {
  const m = (f['addr'] as J)['map'];
  if (!isObj(m) || !isObj(m['data']) || !Array.isArray(m['data']['set'])) throw new Unknown();
  if (f['family'] !== 'ip' && f['family'] !== 'ip6') throw new Unknown();
  const map = m['data']['set'].map((e: unknown) => {
    if (!Array.isArray(e) || e.length !== 2 || !isObj(e[1]) || !Array.isArray(e[1]['concat'])) throw new Unknown();
    const [addr, port] = e[1]['concat'] as unknown[];
    if (typeof addr !== 'string' || typeof port !== 'number') throw new Unknown();
    return [literalText(e[0]), { addr, port }] as const;
  });
  return { k: 'dnatmap', family: f['family'], key: expr(m['key']), map };
}

function stmt(o: unknown): Stmt {
  const [k, v] = only(o);
  const f = isObj(v) ? v : {};
  switch (k) {
    case 'match': {
      const op = f['op'] === '!=' ? '!=' : f['op'] === '==' || f['op'] === 'in' ? '==' : null;
      if (op === null) throw new Unknown();
      return { k: 'match', left: expr(f['left']), op, right: value(f['right']) };
    }
    case 'vmap': {
      const data = f['data'];
      if (typeof data === 'string' && data.startsWith('@')) return { k: 'vmap', key: expr(f['key']), map: data.slice(1) };
      if (!isObj(data) || !Array.isArray(data['set'])) throw new Unknown();
      const entries = data['set'].map((e: unknown) => {
        if (!Array.isArray(e) || e.length !== 2) throw new Unknown();
        return [literalText(e[0]), verdictOf(e[1])] as const;
      });
      return { k: 'vmap', key: expr(f['key']), map: entries };
    }
    case 'reject':
      // Plain `reject` lists as the family's ICMP port-unreachable.
      if (v !== null && !(f['expr'] === 'port-unreachable' && (f['type'] === 'icmp' || f['type'] === 'icmpv6' || f['type'] === 'icmpx')))
        throw new Unknown();
      return { k: 'reject' };
    case 'mangle': {
      if (!isObj(f['key']) || JSON.stringify(f['key']) !== '{"meta":{"key":"mark"}}') throw new Unknown();
      return { k: 'mark', value: typeof f['value'] === 'number' ? f['value'] : expr(f['value']) };
    }
    case 'masquerade': {
      const flags = f['flags'];
      const fullyRandom = flags === 'fully-random' || (Array.isArray(flags) && flags.includes('fully-random'));
      return { k: 'masquerade', fullyRandom };
    }
    case 'dnat':
      if (isObj(f['addr']) && 'map' in f['addr']) return dnatMap(f);
      if (typeof f['addr'] !== 'string') throw new Unknown();
      return { k: 'dnat', addr: f['addr'], port: typeof f['port'] === 'number' ? f['port'] : null };
    case 'counter':
      // `{"counter": "name"}` refers to a named counter; an anonymous one (`{"packets": N, ...}`) is not kube-proxy's.
      if (typeof v !== 'string') throw new Unknown();
      return { k: 'counter', name: v };
    case 'set':
      if ((f['op'] !== 'update' && f['op'] !== 'add') || typeof f['set'] !== 'string') throw new Unknown();
      return { k: 'setupdate', op: f['op'], set: f['set'].replace(/^@/, ''), elem: expr(f['elem']) };
  }
  return { k: 'verdict', verdict: verdictOf(o) };
}

export function ruleFromJson(exprs: readonly unknown[], comment: string | null): Rule {
  const stmts = exprs.map((o): Stmt => {
    try {
      return stmt(o);
    } catch (err) {
      if (err instanceof Unknown) return { k: 'raw', text: `json:${JSON.stringify(o)}` };
      throw err;
    }
  });
  return { stmts, comment };
}
