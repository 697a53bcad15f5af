/**
 * --cleanup and mode switching: remove every chain and jump rule that
 * kube-proxy-ts (either mode) or upstream kube-proxy (iptables, userspace or
 * ipvs mode) installed, or those of some modes, in one atomic restore per family,
 * leaving every other rule alone (kubelet's KUBE-FIREWALL included), and every
 * chain another tool's rules still jump to.
 */
import { chainOwner, type ChainOwner } from './chains.ts';
import type { Iptables } from './iptables.ts';
import { jumpTarget } from './jumps.ts';
import { parseSave } from './parse-save.ts';
import { restoreText, type TableSection } from './restore-text.ts';
import type { Ruleset } from './ruleset.ts';

const TABLES = ['filter', 'nat', 'mangle'] as const;

export interface CleanupSelection {
  /** Remove only these modes' chains (default: every mode's: iptables, userspace and upstream's ipvs). */
  readonly owners?: readonly Exclude<ChainOwner, 'kubelet'>[];
}

/**
 * Restore input that removes the selected kube-proxy chains, the rules of the built-in chains and of kube-proxy's
 * other chains that jump to them; null when there is nothing. A selected chain that another tool's chain jumps to stays,
 * with its rules and what it jumps to: that rule is the other tool's (the CNI portmap plugin's
 * `externalSetMarkChain: KUBE-MARK-MASQ` marks hostPort hairpin traffic through it), and upstream's CleanupLeftovers
 * leaves it too: most releases do not remove KUBE-MARK-MASQ at all, and the releases that do fail their nat
 * restore on the busy chain. Only its jumps from the built-in chains go.
 */
export function cleanupRestoreText(live: Ruleset, sel: CleanupSelection = {}): string | null {
  return planCleanup(live, sel).text;
}

/** A selected kube-proxy chain that stays because another tool's chain jumps to it (directly or through kept ones). */
export interface KeptChain {
  readonly table: string;
  readonly chain: string;
  /** The chains whose rules jump to it: the other tool's, or another kept kube-proxy chain. */
  readonly jumpedFrom: readonly string[];
}

export interface CleanupPlan {
  /** The restore input (cleanupRestoreText); null when there is nothing to remove. */
  readonly text: string | null;
  /** What stays, for the log: an operator sees why a kube-proxy chain outlived --cleanup. */
  readonly kept: readonly KeptChain[];
}

/** cleanupRestoreText, and the selected chains it keeps with the chains that jump to them. */
export function planCleanup(live: Ruleset, sel: CleanupSelection = {}): CleanupPlan {
  const wanted = (name: string): boolean => {
    const owner = chainOwner(name);
    return owner !== null && owner !== 'kubelet' && (sel.owners === undefined || sel.owners.includes(owner));
  };
  const sections: TableSection[] = [];
  const keptChains: KeptChain[] = [];
  for (const table of live.tables) {
    const selected = new Set(table.chains.filter((c) => c.policy === null && wanted(c.name)).map((c) => c.name));
    if (selected.size === 0) continue;
    const byName = new Map(table.chains.map((c) => [c.name, c]));
    const targets = (name: string): string[] =>
      (byName.get(name)?.rules ?? []).map(jumpTarget).filter((t): t is string => t !== null && selected.has(t));
    // Selected chains a foreign user chain reaches, directly or through other selected chains.
    const kept = new Set<string>();
    const reach = table.chains.filter((c) => c.policy === null && chainOwner(c.name) === null).flatMap((c) => targets(c.name));
    for (let name = reach.pop(); name !== undefined; name = reach.pop()) {
      if (kept.has(name)) continue;
      kept.add(name);
      reach.push(...targets(name));
    }
    for (const name of [...kept].sort()) {
      const jumpedFrom = table.chains
        .filter((c) => c.policy === null && (kept.has(c.name) || chainOwner(c.name) === null) && targets(c.name).includes(name))
        .map((c) => c.name);
      keptChains.push({ table: table.name, chain: name, jumpedFrom });
    }
    const doomed = [...selected].filter((name) => !kept.has(name));
    const doomedSet = new Set(doomed);
    // Jumps from chains that stay (built-in, or kube-proxy's unselected ones) must go before the chains can be deleted.
    const edits: string[] = [];
    for (const chain of table.chains) {
      if (doomedSet.has(chain.name) || kept.has(chain.name)) continue;
      const builtin = chain.policy !== null;
      const foreign = !builtin && chainOwner(chain.name) === null;
      for (const rule of chain.rules) {
        const target = jumpTarget(rule);
        if (target === null || foreign) continue;
        if (doomedSet.has(target) || (builtin && kept.has(target))) edits.push(`-D ${chain.name} ${rule}`);
      }
    }
    if (doomed.length === 0 && edits.length === 0) continue;
    sections.push({ table: table.name, emptied: doomed, edits, deleted: doomed });
  }
  return { text: sections.length ? restoreText(sections) : null, kept: keptChains };
}

/** Removes kube-proxy's rules (or one mode's) from one family's tables: how many chains went, and which stayed. */
export async function removeKubeProxyRules(ipt: Iptables, sel: CleanupSelection = {}): Promise<{ removed: number; kept: readonly KeptChain[] }> {
  // The tables that exist, read in one save: `iptables-legacy-save -t nat` creates an empty legacy nat table (hooks
  // every packet then crosses, and iptables-nft's "legacy tables present" warning) on a node that never used legacy.
  const all = parseSave(await ipt.save(), ipt.family);
  const live = { ...all, tables: all.tables.filter((t) => (TABLES as readonly string[]).includes(t.name)) };
  const { text, kept } = planCleanup(live, sel);
  if (text === null) return { removed: 0, kept };
  await ipt.restore(text, { noflush: true, counters: false });
  return { removed: (text.match(/^-X /gm) ?? []).length, kept };
}
