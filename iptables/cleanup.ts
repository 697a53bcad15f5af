/**
 * --cleanup and mode switching: remove every chain and jump rule that
 * kube-proxy-ts (either mode) or upstream kube-proxy (iptables, userspace or
 * ipvs mode) installed, or those of some modes, in one atomic restore per family,
 * leaving every other rule alone (kubelet's KUBE-FIREWALL included).
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

/** Restore input that removes the selected kube-proxy chains and every rule jumping to them; null when there is nothing. */
export function cleanupRestoreText(live: Ruleset, sel: CleanupSelection = {}): string | null {
  const wanted = (name: string): boolean => {
    const owner = chainOwner(name);
    return owner !== null && owner !== 'kubelet' && (sel.owners === undefined || sel.owners.includes(owner));
  };
  const sections: TableSection[] = [];
  for (const table of live.tables) {
    const doomed = table.chains.filter((c) => c.policy === null && wanted(c.name)).map((c) => c.name);
    if (doomed.length === 0) continue;
    const doomedSet = new Set(doomed);
    // Jumps from chains that stay (built-in or foreign) must go before the chains can be deleted.
    const edits: string[] = [];
    for (const chain of table.chains) {
      if (doomedSet.has(chain.name)) continue;
      for (const rule of chain.rules) {
        const target = jumpTarget(rule);
        if (target && doomedSet.has(target)) edits.push(`-D ${chain.name} ${rule}`);
      }
    }
    sections.push({ table: table.name, emptied: doomed, edits, deleted: doomed });
  }
  return sections.length ? restoreText(sections) : null;
}

/** Removes kube-proxy's rules (or one mode's) from one family's tables. Returns the number of chains removed. */
export async function removeKubeProxyRules(ipt: Iptables, sel: CleanupSelection = {}): Promise<number> {
  // The tables that exist, read in one save: `iptables-legacy-save -t nat` creates an empty legacy nat table (hooks
  // every packet then crosses, and iptables-nft's "legacy tables present" warning) on a node that never used legacy.
  const all = parseSave(await ipt.save(), ipt.family);
  const live = { ...all, tables: all.tables.filter((t) => (TABLES as readonly string[]).includes(t.name)) };
  const text = cleanupRestoreText(live, sel);
  if (text === null) return 0;
  await ipt.restore(text, { noflush: true, counters: false });
  return (text.match(/^-X /gm) ?? []).length;
}
