/**
 * Jump rules from the built-in chains into kube-proxy's chains. kube-proxy
 * never owns PREROUTING & co.: on a full sync it checks the live rules and
 * inserts, at the top, the jumps that are missing (upstream does this with
 * `iptables -C` / `-I` calls; here the insertions ride in the same atomic
 * restore as everything else).
 *
 * A live jump counts as present only when its whole rule is the desired one
 * once both are normalised (what `iptables -C` compares: every match and
 * option, not just target and comment). A node taken over from an older
 * kube-proxy holds variants, e.g. 2016's filter OUTPUT jump to KUBE-SERVICES
 * without `-m conntrack --ctstate NEW`, which sends every packet, not just
 * new connections, through the REJECT rules. Upstream leaves such a variant
 * next to the jump it inserts; here it is replaced: a live rule in a built-in
 * chain that jumps to a chain some desired jump of that chain targets, but
 * equals none of them, is deleted (`-D`) in the same restore that inserts the
 * desired one. kubelet's jumps to KUBE-FIREWALL are kubelet's and only ever
 * inserted, never replaced.
 */
import type { IPFamily } from '../proxier/types.ts';
import { jumpRuleSpec, KUBE_FIREWALL, type JumpRule } from './chains.ts';
import { normalizeRuleSpec } from './rule-normalize.ts';
import { BUILTIN_CHAINS, getChain, type Chain, type Ruleset } from './ruleset.ts';

export interface BuiltinRule {
  readonly table: string;
  /** The built-in chain. */
  readonly chain: string;
  /** Rule spec (after "-A CHAIN "): desired form for missing jumps, live form for stale ones. */
  readonly rule: string;
}

export interface JumpChanges {
  /** Desired jumps no live rule equals, in the order to insert them at position 1. */
  readonly missing: readonly BuiltinRule[];
  /** Live rules jumping to kube-proxy's chains that equal no desired jump: replaced (deleted). */
  readonly stale: readonly BuiltinRule[];
}

/**
 * The built-in chains of a table holding these jump rows, in their final
 * order (each row is inserted at position 1 in turn, so the last listed for a
 * chain ends up first).
 */
export function jumpChains(rows: readonly JumpRule[], table: 'filter' | 'nat'): Chain[] {
  const mine = rows.filter((j) => j.table === table);
  return (BUILTIN_CHAINS[table] ?? [])
    .filter((from) => mine.some((j) => j.from === from))
    .map((from) => ({
      name: from,
      policy: 'ACCEPT',
      rules: mine
        .filter((j) => j.from === from)
        .map(jumpRuleSpec)
        .reverse(),
    }));
}

/**
 * Jump target (-j or -g) of a rule spec, or null. Quoted text (a comment, a log prefix, with iptables-save's
 * backslash escapes) is a value, never a target: an admin's `--comment "... -j KUBE-SERVICES ..."` on a rule of their
 * own must not make it kube-proxy's jump (deleted by the jump repair and by --cleanup).
 */
export function jumpTarget(rule: string): string | null {
  const words = rule.includes('"') ? rule.replace(/"(?:[^"\\]|\\.)*"/g, '""') : rule;
  return /(?:^|\s)-[jg]\s+(\S+)/.exec(words)?.[1] ?? null;
}

function canonical(rule: string, family: IPFamily): string {
  try {
    return normalizeRuleSpec(rule, family);
  } catch {
    return `unparseable: ${rule}`; // equals only itself
  }
}

/** What to change in `live`'s built-in chains so that they hold exactly `desired`'s jumps (other rules untouched). */
export function jumpRuleChanges(desired: Ruleset, live: Ruleset): JumpChanges {
  const missing: BuiltinRule[] = [];
  const stale: BuiltinRule[] = [];
  for (const table of desired.tables) {
    for (const chain of table.chains) {
      if (chain.policy === null) continue;
      const wanted = new Set(chain.rules.map((r) => canonical(r, desired.family)));
      // Targets whose jumps from this chain are kube-proxy's to replace.
      const owned = new Set(chain.rules.map(jumpTarget).filter((t): t is string => t !== null && t !== KUBE_FIREWALL));
      const present = new Set<string>();
      for (const rule of getChain(live, table.name, chain.name)?.rules ?? []) {
        const target = jumpTarget(rule);
        if (target === null || !(owned.has(target) || target === KUBE_FIREWALL)) continue;
        const c = canonical(rule, desired.family);
        if (wanted.has(c)) present.add(c);
        else if (owned.has(target)) stale.push({ table: table.name, chain: chain.name, rule });
      }
      // Inserting at position 1 in reverse order keeps the desired order.
      for (const rule of [...chain.rules].reverse()) {
        if (!present.has(canonical(rule, desired.family))) missing.push({ table: table.name, chain: chain.name, rule });
      }
    }
  }
  return { missing, stale };
}

/** Restore lines per table: `-D` for each stale jump (one per occurrence), then `-I CHAIN 1` for each missing one. */
export function jumpRuleLines(changes: JumpChanges): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const add = (table: string, line: string): void => {
    const lines = out.get(table);
    if (lines) lines.push(line);
    else out.set(table, [line]);
  };
  for (const j of changes.stale) add(j.table, `-D ${j.chain} ${j.rule}`);
  for (const j of changes.missing) add(j.table, `-I ${j.chain} 1 ${j.rule}`);
  return out;
}
