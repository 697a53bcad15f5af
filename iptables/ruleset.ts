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
 * (see restore-text.ts, RestoreTextOptions.builtins).
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

/** Number of rules kube-proxy owns in a table: rules of user chains (jump rules in built-in chains excluded). */
export function countRules(rs: Ruleset, table: string): number {
  let n = 0;
  for (const c of getTable(rs, table)?.chains ?? []) if (c.policy === null) n += c.rules.length;
  return n;
}
