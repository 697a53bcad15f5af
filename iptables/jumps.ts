/**
 * Jump rules from the built-in chains into kube-proxy's chains. kube-proxy
 * never owns PREROUTING & co.: on a full sync it checks the live rules and
 * inserts, at the top, only the jumps that are missing (upstream does this
 * with `iptables -C` / `-I` calls; here the insertions ride in the same
 * atomic restore as everything else).
 */
import type { Ruleset } from './ruleset.ts';
import { getChain } from './ruleset.ts';

/** Whether a live rule (iptables-save form) is the jump described by a rendered jump rule. */
export function isSameJump(live: string, rendered: string): boolean {
  const target = / -j (\S+)$/.exec(` ${rendered}`)?.[1];
  if (!target || !new RegExp(`(^| )-j ${target}( |$)`).test(live)) return false;
  const comment = /--comment ("[^"]*"|\S+)/.exec(rendered)?.[1];
  if (comment === undefined) return !/--comment/.test(live);
  const text = comment.replace(/^"|"$/g, '');
  return live.includes(`--comment "${text}"`) || live.includes(`--comment ${text} `) || live.endsWith(`--comment ${text}`);
}

/**
 * `-I CHAIN 1 ...` lines, per table, for every jump of `desired`'s built-in
 * chains that `live` lacks, in the order that reproduces the desired order.
 */
export function missingJumpLines(desired: Ruleset, live: Ruleset): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const table of desired.tables) {
    const lines: string[] = [];
    for (const chain of table.chains) {
      if (chain.policy === null) continue;
      const liveRules = getChain(live, table.name, chain.name)?.rules ?? [];
      // Inserting at position 1 in reverse order keeps the desired order.
      for (const rule of [...chain.rules].reverse()) {
        if (!liveRules.some((l) => isSameJump(l, rule))) lines.push(`-I ${chain.name} 1 ${rule}`);
      }
    }
    if (lines.length) out.set(table.name, lines);
  }
  return out;
}
