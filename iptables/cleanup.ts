/**
 * --cleanup and mode switching: remove every chain and jump rule that
 * kube-proxy-ts (either mode) or upstream kube-proxy (iptables or userspace
 * mode) installed, in one atomic restore per family, leaving every other rule
 * alone (including kubelet's KUBE-FIREWALL).
 */
import { isOwnedChain } from './chains.ts';
import type { Iptables } from './iptables.ts';
import { parseSave } from './parse.ts';
import type { Ruleset } from './ruleset.ts';

const TABLES = ['filter', 'nat', 'mangle'] as const;

/** Jump target of a rule spec (-j or -g), or null. */
function jumpTarget(rule: string): string | null {
  return /(?:^| )-[jg] (\S+)/.exec(rule)?.[1] ?? null;
}

export interface CleanupSelection {
  /** Which owned chains to remove (default: all of them). */
  readonly chains?: (name: string) => boolean;
}

/** Restore input that removes the selected kube-proxy chains and every rule jumping to them; null when there is nothing. */
export function cleanupRestoreText(live: Ruleset, sel: CleanupSelection = {}): string | null {
  const wanted = (name: string): boolean => isOwnedChain(name) && (sel.chains?.(name) ?? true);
  const out: string[] = [];
  for (const table of live.tables) {
    const doomed = table.chains.filter((c) => c.policy === null && wanted(c.name)).map((c) => c.name);
    if (doomed.length === 0) continue;
    const doomedSet = new Set(doomed);
    out.push(`*${table.name}`);
    for (const name of doomed) out.push(`:${name} - [0:0]`);
    // Jumps from chains that stay (built-in or foreign) must go before the chains can be deleted.
    for (const chain of table.chains) {
      if (doomedSet.has(chain.name)) continue;
      for (const rule of chain.rules) {
        const target = jumpTarget(rule);
        if (target && doomedSet.has(target)) out.push(`-D ${chain.name} ${rule}`);
      }
    }
    for (const name of doomed) out.push(`-X ${name}`);
    out.push('COMMIT');
  }
  return out.length ? out.join('\n') + '\n' : null;
}

/** Removes kube-proxy's rules from one family's tables. Returns the number of chains removed. */
export async function removeKubeProxyRules(ipt: Iptables, sel: CleanupSelection = {}): Promise<number> {
  const live = parseSave(await ipt.save([...TABLES]), ipt.family);
  const text = cleanupRestoreText(live, sel);
  if (text === null) return 0;
  await ipt.restore(text, { noflush: true, counters: false });
  return (text.match(/^-X /gm) ?? []).length;
}
