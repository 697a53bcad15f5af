/**
 * Sync planning: the iptables-restore input that takes the kernel from what
 * was last applied to the desired Ruleset.
 *
 * - Full sync (nothing known to be applied): every kube-proxy chain is
 *   written, and stale per-service chains found in the kernel are deleted.
 * - Partial sync: only chains whose rules changed since the last successful
 *   restore are written, top-level chains included (upstream rewrites the
 *   filter table and the top-level nat chains every time; an endpoint change
 *   leaves KUBE-SERVICES as it is, so we do not); per-service chains that
 *   disappeared are flushed and deleted.
 *
 * Chains are compared by identity first (the render cache hands back the same
 * Chain object for an unchanged service), then by content.
 */
import { isServiceChain } from './chain-names.ts';
import type { Chain, Ruleset } from './ruleset.ts';

/** What the kernel holds after a successful restore, per table and chain. */
export interface AppliedState {
  readonly tables: ReadonlyMap<string, ReadonlyMap<string, Chain>>;
}

export interface PlanInput {
  readonly desired: Ruleset;
  /** Null forces a full sync. */
  readonly applied: AppliedState | null;
  /** Full sync only: KUBE-* chain names found in the kernel (from iptables-save), for stale-chain deletion. */
  readonly existingChains?: ReadonlyMap<string, readonly string[]>;
  /** Extra lines per table (e.g. missing jump-rule insertions), written after the rules. */
  readonly extraLines?: ReadonlyMap<string, readonly string[]>;
}

export interface Plan {
  readonly full: boolean;
  /** iptables-restore input, for `--noflush`. */
  readonly text: string;
  /** Chains declared (rewritten) per table. */
  readonly writtenChains: ReadonlyMap<string, number>;
  /** Rules written per table (metric kubeproxy_sync_proxy_rules_iptables_last). */
  readonly writtenRules: ReadonlyMap<string, number>;
  readonly deletedChains: readonly string[];
  /** The state to remember once the restore succeeded. */
  readonly next: AppliedState;
}

function sameRules(a: Chain | undefined, b: Chain): boolean {
  if (!a) return false;
  if (a === b || a.rules === b.rules) return true;
  if (a.rules.length !== b.rules.length) return false;
  for (let i = 0; i < a.rules.length; i++) if (a.rules[i] !== b.rules[i]) return false;
  return true;
}

export function planSync(input: PlanInput): Plan {
  const { desired, applied } = input;
  const full = applied === null;
  const lines: string[] = [];
  const written = new Map<string, number>();
  const writtenRules = new Map<string, number>();
  const deleted: string[] = [];
  const nextTables = new Map<string, Map<string, Chain>>();

  for (const table of desired.tables) {
    const before = applied?.tables.get(table.name);
    const next = new Map<string, Chain>();
    const toWrite: Chain[] = [];
    for (const chain of table.chains) {
      if (chain.policy !== null) continue; // built-in chains: jump rules are managed separately
      next.set(chain.name, chain);
      if (full || !sameRules(before?.get(chain.name), chain)) toWrite.push(chain);
    }
    const stale: string[] = [];
    const candidates = full ? (input.existingChains?.get(table.name) ?? []) : [...(before?.keys() ?? [])];
    for (const name of candidates) if (isServiceChain(name) && !next.has(name)) stale.push(name);

    if (toWrite.length === 0 && stale.length === 0 && !input.extraLines?.get(table.name)?.length) {
      written.set(table.name, 0);
      writtenRules.set(table.name, 0);
      nextTables.set(table.name, next);
      continue;
    }
    lines.push(`*${table.name}`);
    for (const c of toWrite) lines.push(`:${c.name} - [0:0]`);
    for (const name of stale) lines.push(`:${name} - [0:0]`);
    let rules = 0;
    for (const c of toWrite) {
      for (const r of c.rules) lines.push(`-A ${c.name} ${r}`);
      rules += c.rules.length;
    }
    for (const line of input.extraLines?.get(table.name) ?? []) lines.push(line);
    for (const name of stale) lines.push(`-X ${name}`);
    lines.push('COMMIT');
    written.set(table.name, toWrite.length);
    writtenRules.set(table.name, rules);
    deleted.push(...stale);
    nextTables.set(table.name, next);
  }
  return { full, text: lines.length ? lines.join('\n') + '\n' : '', writtenChains: written, writtenRules, deletedChains: deleted, next: { tables: nextTables } };
}
