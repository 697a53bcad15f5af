/**
 * The Ruleset model: family -> tables -> ordered chains -> ordered rules.
 *
 * A rule is kept as its rule-spec text (everything after "-A CHAIN "), exactly
 * as written to iptables-restore. Rules are tokenised only where needed
 * (tracing, diffing), which keeps a 10,000-service ruleset cheap to build,
 * hash and compare.
 *
 * Built-in chains (PREROUTING, INPUT, ...) carry a policy; user chains have
 * policy null. The renderer puts kube-proxy's jump rules into the built-in
 * chains of its Ruleset; how they reach the kernel depends on the caller
 * (see RestoreTextOptions.builtins).
 */
import type { IPFamily } from '../proxier/types.ts';

export interface Chain {
  readonly name: string;
  /** "ACCEPT"/"DROP" for built-in chains; null for user-defined chains ("-"). */
  readonly policy: string | null;
  /** Rule specs in order, without the leading "-A NAME ". */
  readonly rules: readonly string[];
}

export interface Table {
  readonly name: string;
  readonly chains: readonly Chain[];
}

export interface Ruleset {
  readonly family: IPFamily;
  readonly tables: readonly Table[];
}

export const BUILTIN_CHAINS: Readonly<Record<string, readonly string[]>> = {
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
  raw: ['PREROUTING', 'OUTPUT'],
  security: ['INPUT', 'FORWARD', 'OUTPUT'],
};

export function isBuiltinChain(table: string, chain: string): boolean {
  return BUILTIN_CHAINS[table]?.includes(chain) ?? false;
}

export function getTable(rs: Ruleset, name: string): Table | undefined {
  return rs.tables.find((t) => t.name === name);
}

export function getChain(rs: Ruleset, table: string, chain: string): Chain | undefined {
  return getTable(rs, table)?.chains.find((c) => c.name === chain);
}

export interface RestoreTextOptions {
  /**
   * What to do with rules in built-in chains:
   * - "skip": leave them out (the agent manages jump rules separately, so that
   *   kube-proxy never owns PREROUTING & co.);
   * - "insert": emit them as "-I CHAIN n ..." so that loading the text with
   *   `iptables-restore --noflush` into a fresh namespace yields a working
   *   ruleset in the same order upstream kube-proxy would produce.
   */
  readonly builtins: 'skip' | 'insert';
  /** Lines written before each table's COMMIT, by table (e.g. missing jump rules as "-I CHAIN ..."). */
  readonly extraLines?: ReadonlyMap<string, readonly string[]>;
}

/**
 * iptables-restore input for the whole ruleset: per table, all chain
 * declarations, then all rules, then COMMIT (upstream's layout).
 */
export function toRestoreText(rs: Ruleset, opts: RestoreTextOptions = { builtins: 'skip' }): string {
  const out: string[] = [];
  for (const table of rs.tables) {
    out.push(`*${table.name}`);
    for (const chain of table.chains) {
      if (chain.policy === null) out.push(`:${chain.name} - [0:0]`);
    }
    if (opts.builtins === 'insert') {
      for (const chain of table.chains) {
        if (chain.policy === null) continue;
        chain.rules.forEach((rule, i) => out.push(`-I ${chain.name} ${i + 1} ${rule}`));
      }
    }
    for (const chain of table.chains) {
      if (chain.policy !== null) continue;
      for (const rule of chain.rules) out.push(`-A ${chain.name} ${rule}`);
    }
    out.push(...(opts.extraLines?.get(table.name) ?? []));
    out.push('COMMIT');
  }
  return out.join('\n') + '\n';
}

/** Number of rules kube-proxy owns in a table: rules of user chains (jump rules in built-in chains excluded). */
export function countRules(rs: Ruleset, table: string): number {
  let n = 0;
  for (const c of getTable(rs, table)?.chains ?? []) if (c.policy === null) n += c.rules.length;
  return n;
}
