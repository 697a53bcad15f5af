/**
 * The kernel side of iptables-restore, for one table section: how chain
 * declarations and -A/-I/-D/-R/-N/-F/-X/-Z/-P lines change a table, and what
 * is refused. Every rule was checked against iptables 1.8.9 (nft and legacy)
 * in network namespaces (fake-iptables.e2e.test.ts keeps checking); where
 * the backends differ the behaviour follows `backend`. Pure: it returns the
 * new table or throws TableError.
 */
import type { IptablesBackend } from './iptables.ts';
import type { RestoreOp, RestoreTable } from './parse.ts';
import { sameRuleSpec } from './rule-normalize.ts';
import { MATCH_OPTIONS, OTHER_MATCHES, OTHER_TARGETS, TARGET_OPTIONS, TARGET_TABLES } from './rule-options.ts';
import { parseRuleWords, RuleSyntaxError, tokenizeRule } from './rule-words.ts';
import { BUILTIN_CHAINS, isBuiltinChain } from './ruleset.ts';
import type { IPFamily } from '../proxier/types.ts';

export interface FakeChain {
  /** Built-in chains: ACCEPT/DROP; user chains: null. */
  readonly policy: string | null;
  readonly rules: readonly string[];
}

/** Chain name -> chain. Map order is irrelevant: iptables-save sorts user chains. */
export type FakeTable = ReadonlyMap<string, FakeChain>;

/** A refused line: what the kernel or iptables said, and where. */
export class TableError extends Error {
  override readonly name = 'TableError';
  readonly line: number;
  readonly exitCode: number;
  constructor(line: number, message: string, exitCode = 1) {
    super(message);
    this.line = line;
    this.exitCode = exitCode;
  }
}

export interface ApplyOptions {
  readonly noflush: boolean;
  readonly backend: IptablesBackend;
  readonly family: IPFamily;
}

const MAX_CHAIN_NAME = 28;
const POLICIES = new Set(['ACCEPT', 'DROP']);

/** A table as it is before anything touched it: built-in chains, empty, policy ACCEPT. */
export function freshTable(table: string): Map<string, FakeChain> {
  return new Map((BUILTIN_CHAINS[table] ?? []).map((c) => [c, { policy: 'ACCEPT', rules: [] }]));
}

type Step = { kind: 'decl'; chain: string; policy: string | null; line: number } | { kind: 'op'; op: RestoreOp };

/** Declarations and commands merged back into input order (a declaration after rules flushes them). */
function steps(section: RestoreTable): Step[] {
  const out: Step[] = [
    ...section.declarations.map((d): Step => ({ kind: 'decl', chain: d.chain, policy: d.policy, line: d.line })),
    ...section.ops.map((op): Step => ({ kind: 'op', op })),
  ];
  return out.sort((a, b) => (a.kind === 'decl' ? a.line : a.op.line) - (b.kind === 'decl' ? b.line : b.op.line));
}

interface WorkChain {
  policy: string | null;
  rules: string[];
}

/** The table after one restore section, or TableError at the first refused line. */
export function applySection(current: FakeTable | undefined, section: RestoreTable, opts: ApplyOptions): Map<string, FakeChain> {
  const name = section.name;
  // Chains are shared with `current` until first written (copy on write keeps long appends linear).
  const table = new Map<string, WorkChain>();
  const owned = new Set<string>();
  if (opts.noflush) for (const [c, ch] of current ?? freshTable(name)) table.set(c, { policy: ch.policy, rules: ch.rules as string[] });
  else {
    // Without --noflush the table is rebuilt: nft recreates it (policies back to ACCEPT), legacy keeps policies.
    for (const c of BUILTIN_CHAINS[name] ?? []) {
      table.set(c, { policy: opts.backend === 'legacy' ? (current?.get(c)?.policy ?? 'ACCEPT') : 'ACCEPT', rules: [] });
      owned.add(c);
    }
  }
  const chain = (c: string, line: number): WorkChain => {
    const ch = table.get(c);
    if (!ch) throw new TableError(line, `chain ${c} does not exist in table ${name} (No chain/target/match by that name)`);
    return ch;
  };
  const writable = (c: string, line: number): string[] => {
    const ch = chain(c, line);
    if (!owned.has(c)) {
      ch.rules = [...ch.rules];
      owned.add(c);
    }
    return ch.rules;
  };
  const create = (c: string, policy: string | null): void => {
    table.set(c, { policy, rules: [] });
    owned.add(c);
  };
  const checkName = (c: string, line: number): void => {
    if (c.length > MAX_CHAIN_NAME) throw new TableError(line, `chain name "${c}" too long (${MAX_CHAIN_NAME} characters at most)`, 2);
  };

  for (const step of steps(section)) {
    if (step.kind === 'decl') {
      const { chain: c, policy, line } = step;
      checkName(c, line);
      if (isBuiltinChain(name, c)) {
        if (policy !== null && !POLICIES.has(policy)) throw new TableError(line, `bad policy name "${policy}" for chain ${c}`);
        if (policy !== null) chain(c, line).policy = policy;
        continue;
      }
      if (policy !== null && opts.backend === 'legacy')
        throw new TableError(line, `can't set policy "${policy}" on user chain ${c} (Bad built-in chain name)`);
      create(c, null);
      continue;
    }
    const { op } = step;
    const line = op.line;
    const c = op.chain;
    switch (op.op) {
      case 'N':
        checkName(c!, line);
        if (table.has(c!)) throw new TableError(line, `chain ${c} already exists in table ${name}`);
        create(c!, null);
        break;
      case 'A':
        chain(c!, line);
        validateRule(op.rule!, table, name, line);
        writable(c!, line).push(op.rule!);
        break;
      case 'I':
      case 'R': {
        const size = chain(c!, line).rules.length;
        const pos = op.position ?? 1;
        const max = op.op === 'I' ? size + 1 : size;
        if (pos < 1 || pos > max)
          throw new TableError(line, `${op.op === 'I' ? 'index of insertion' : 'rule number'} ${pos} too big for chain ${c} (${size} rules)`);
        validateRule(op.rule!, table, name, line);
        writable(c!, line).splice(pos - 1, op.op === 'I' ? 0 : 1, op.rule!);
        break;
      }
      case 'D': {
        const rules = chain(c!, line).rules;
        const at = op.position !== undefined ? op.position - 1 : rules.findIndex((r) => sameRuleSpec(r, op.rule!, opts.family));
        if (at < 0 || at >= rules.length) throw new TableError(line, `no such rule in chain ${c} (does a matching rule exist in that chain?)`);
        writable(c!, line).splice(at, 1);
        break;
      }
      case 'F':
      case 'Z':
        for (const target of c === null ? [...table.keys()] : [c]) {
          const ch = chain(target, line);
          if (op.op === 'F') {
            ch.rules = [];
            owned.add(target);
          }
        }
        break;
      case 'X': {
        const doomed = c === null ? [...table.keys()].filter((k) => !isBuiltinChain(name, k)) : [c];
        for (const d of doomed) deleteChain(table, name, d, line);
        break;
      }
      case 'P':
        if (!isBuiltinChain(name, c!)) throw new TableError(line, `cannot set a policy on ${c}: not a built-in chain of table ${name}`);
        if (!POLICIES.has(op.rule!)) throw new TableError(line, `bad policy name "${op.rule}"`);
        chain(c!, line).policy = op.rule!;
        break;
    }
  }
  return new Map([...table].map(([c, ch]) => [c, { policy: ch.policy, rules: ch.rules }]));
}

/** Whether a stored (already validated) rule jumps or goes to chain `c`. */
function jumpsTo(rule: string, c: string): boolean {
  return rule.includes(c) && parseRuleWords(tokenizeRule(rule)).target === c;
}

function deleteChain(table: Map<string, WorkChain>, name: string, c: string, line: number): void {
  const ch = table.get(c);
  if (!ch) throw new TableError(line, `chain ${c} does not exist in table ${name} (No chain/target/match by that name)`);
  if (isBuiltinChain(name, c)) throw new TableError(line, `cannot delete built-in chain ${c} (Device or resource busy)`, 4);
  if (ch.rules.length > 0)
    throw new TableError(line, `cannot delete chain ${c}: it still holds ${ch.rules.length} rule(s) (Device or resource busy)`, 4);
  for (const [other, o] of table) {
    if (o.rules.some((r) => jumpsTo(r, c)))
      throw new TableError(line, `cannot delete chain ${c}: a rule in ${other} still jumps to it (Device or resource busy)`, 4);
  }
  table.delete(c);
}

/** Refuses a rule spec iptables would not load into this table. */
function validateRule(rule: string, table: ReadonlyMap<string, FakeChain>, name: string, line: number): void {
  let words;
  try {
    words = parseRuleWords(tokenizeRule(rule));
  } catch (e) {
    if (e instanceof RuleSyntaxError) throw new TableError(line, e.message, 2);
    throw e;
  }
  const unknown = words.unknownOptions[0];
  if (unknown !== undefined) throw new TableError(line, `unknown option "${unknown}"`, 2);
  for (const m of words.matches) {
    if (MATCH_OPTIONS[m.module] === undefined && !OTHER_MATCHES.has(m.module)) throw new TableError(line, `couldn't load match "${m.module}"`, 2);
  }
  const t = words.target;
  if (t === null) return;
  if (table.has(t)) {
    if (isBuiltinChain(name, t)) throw new TableError(line, `cannot jump to built-in chain ${t}`);
    return;
  }
  if (words.goto || (TARGET_OPTIONS[t] === undefined && !OTHER_TARGETS.has(t))) {
    throw new TableError(line, `chain ${t} does not exist in table ${name} (couldn't load target "${t}")`, 2);
  }
  const tables = TARGET_TABLES[t];
  if (tables && !tables.includes(name)) throw new TableError(line, `target ${t} is not valid in table ${name} (only in ${tables.join(', ')})`);
}
