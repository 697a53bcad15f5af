/**
 * Outside changes to what the iptables mode wrote, found by its periodic sync
 * in one scan of iptables-save (parse-save.ts scanSave): a kube-proxy chain
 * missing, or holding another number of rules than the last restore left in
 * it; a per-service chain the mode no longer owns; a jump rule missing from,
 * or outdated in, a built-in chain. The text of rules is not compared
 * (iptables-save prints them in its own form; the diff command normalises
 * them): a rule replaced in place waits for the next full sync (hourly, but
 * not in large-cluster mode, as upstream), where
 * upstream leaves every outside change but a flush of its canary chain.
 */
import { ruleCount } from '../proxier/packed-rules.ts';
import { isServiceChain } from './chains.ts';
import { jumpRuleChanges } from './jumps.ts';
import type { SaveScan } from './parse-save.ts';
import type { AppliedState } from './plan.ts';
import type { Ruleset } from './ruleset.ts';

/** What drifted, one line each ("nat KUBE-SERVICES: 3 rules, 5 written"); empty when the kernel holds what was written. */
export function findDrift(scan: SaveScan, applied: AppliedState, desiredTopLevel: Ruleset): string[] {
  const out: string[] = [];
  const expected = new Map<string, Map<string, number>>();
  for (const [table, chains] of applied.topLevel) {
    const m = new Map<string, number>();
    for (const [name, chain] of chains) m.set(name, ruleCount(chain));
    expected.set(table, m);
  }
  let nat = expected.get('nat');
  if (!nat) expected.set('nat', (nat = new Map()));
  for (const render of applied.services.values()) for (const chain of render.natChains) nat.set(chain.name, ruleCount(chain));

  for (const [table, chains] of expected) {
    const present = new Set(scan.chains.get(table) ?? []);
    const counts = scan.chainRuleCounts.get(table);
    for (const [name, want] of chains) {
      if (!present.has(name)) out.push(`${table} ${name}: missing`);
      else {
        const have = counts?.get(name) ?? 0;
        if (have !== want) out.push(`${table} ${name}: ${have} rules, ${want} written`);
      }
    }
    for (const name of present) if (isServiceChain(name) && !chains.has(name)) out.push(`${table} ${name}: not this agent's`);
  }
  const jumps = jumpRuleChanges(desiredTopLevel, scan.builtins);
  for (const j of jumps.missing) out.push(`${j.table} ${j.chain}: missing ${j.rule}`);
  for (const j of jumps.stale) out.push(`${j.table} ${j.chain}: outdated ${j.rule}`);
  return out;
}
