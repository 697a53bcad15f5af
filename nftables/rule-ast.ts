/**
 * A structured nft rule: the statements kube-proxy writes, in the shape nft's
 * JSON uses (match, vmap, verdicts, mangle, nat, set update). Both the rule
 * text we write and the JSON `nft -j list` prints are read into this form
 * (rule-text.ts, rule-json.ts); rule-print.ts prints it one canonical way,
 * so the two compare equal; the tracer evaluates it.
 */

export type Expr =
  | { readonly k: 'payload'; readonly proto: 'ip' | 'ip6' | 'th'; readonly field: string }
  | { readonly k: 'meta'; readonly key: string }
  | { readonly k: 'ct'; readonly key: string }
  | { readonly k: 'fib'; readonly flags: readonly string[]; readonly result: string }
  | { readonly k: 'numgen'; readonly mode: string; readonly mod: number; readonly offset: number }
  | { readonly k: 'concat'; readonly items: readonly Expr[] }
  | { readonly k: 'binop'; readonly op: '&' | '|' | '^'; readonly left: Expr; readonly right: number };

/** A literal (address, prefix "a/n", protocol, number as text, interface name, "new", "local"). */
export type Value =
  | { readonly k: 'lit'; readonly text: string }
  | { readonly k: 'setref'; readonly name: string }
  | { readonly k: 'anon'; readonly items: readonly string[] };

export type Verdict = { readonly k: 'accept' | 'drop' | 'return' | 'continue' } | { readonly k: 'jump' | 'goto'; readonly target: string };

export type Stmt =
  | { readonly k: 'match'; readonly left: Expr; readonly op: '==' | '!='; readonly right: Value }
  | { readonly k: 'vmap'; readonly key: Expr; readonly map: string | readonly (readonly [string, Verdict])[] }
  | { readonly k: 'verdict'; readonly verdict: Verdict }
  | { readonly k: 'reject' }
  | { readonly k: 'mark'; readonly value: Expr | number }
  | { readonly k: 'masquerade'; readonly fullyRandom: boolean }
  | { readonly k: 'dnat'; readonly addr: string; readonly port: number | null }
  /**
   * Generation B's `dnat ip addr . port to numgen random mod N map { 0 : 10.0.0.1 . 80 , ... }` (nft 1.0.6 lists it
   * as `dnat ip to numgen ...`): the key's value picks the entry whose address and port the packet is sent to.
   */
  | {
      readonly k: 'dnatmap';
      readonly family: 'ip' | 'ip6';
      readonly key: Expr;
      readonly map: readonly (readonly [string, { readonly addr: string; readonly port: number }])[];
    }
  | { readonly k: 'setupdate'; readonly op: 'update' | 'add'; readonly set: string; readonly elem: Expr }
  /** `counter name "X"`: counts into a named counter of the table (--traffic-counters). */
  | { readonly k: 'counter'; readonly name: string }
  /** Anything else, kept as text so that a difference still shows (never matches in the tracer). */
  | { readonly k: 'raw'; readonly text: string };

export interface Rule {
  readonly stmts: readonly Stmt[];
  readonly comment: string | null;
}

/** Every chain a rule can continue in (jump/goto targets, vmap entries). */
export function ruleTargets(rule: Rule): string[] {
  const out: string[] = [];
  for (const s of rule.stmts) {
    if (s.k === 'verdict' && (s.verdict.k === 'jump' || s.verdict.k === 'goto')) out.push(s.verdict.target);
    if (s.k === 'vmap' && typeof s.map !== 'string') {
      for (const [, v] of s.map) if (v.k === 'jump' || v.k === 'goto') out.push(v.target);
    }
  }
  return out;
}

/** Every named counter a rule counts into. */
export function ruleCounters(rule: Rule): string[] {
  const out: string[] = [];
  for (const s of rule.stmts) if (s.k === 'counter') out.push(s.name);
  return out;
}

/** Every named set or map a rule reads or writes. */
export function ruleSets(rule: Rule): string[] {
  const out: string[] = [];
  for (const s of rule.stmts) {
    if (s.k === 'match' && s.right.k === 'setref') out.push(s.right.name);
    if (s.k === 'vmap' && typeof s.map === 'string') out.push(s.map);
    if (s.k === 'setupdate') out.push(s.set);
  }
  return out;
}
