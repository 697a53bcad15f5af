/**
 * A chain's rules kept as one text, rules separated by "\n": what both modes'
 * render caches keep for every per-service chain between syncs
 * (iptables/packed-chain.ts, nftables/packed-chain.ts add each mode's chain
 * fields). At 10,000 services × 5 endpoints that is 60,000 chains and
 * 160,000-180,000 rules; an array of rule strings costs each chain an array
 * and each rule a string header (~7 MB of a mode's retained heap). Rules
 * never hold a newline (iptables-restore and nft both read their input line
 * by line), so the text splits back into the very rules.
 *
 * The writers of rule text, the plans' comparisons and the rule counts read
 * `text` and `count` (ruleCount, sameRules); everything else (inspect, diff,
 * tests) reads `rules`, split on demand.
 */

/** What this needs of a chain: its rules. */
export interface HasRules {
  readonly rules: readonly string[];
}

export class PackedRules implements HasRules {
  readonly name: string;
  /** The rules joined by "\n" ("" when there is none). */
  readonly text: string;
  /** How many rules `text` holds. */
  readonly count: number;

  constructor(name: string, rules: readonly string[]) {
    this.name = name;
    // join builds one flat string (the rules themselves are concatenation trees, let go here).
    this.text = rules.join('\n');
    this.count = rules.length;
  }

  get rules(): readonly string[] {
    return this.count === 0 ? [] : this.text.split('\n');
  }
}

/** How many rules a chain holds, without splitting a packed one. */
export function ruleCount(c: HasRules): number {
  return c instanceof PackedRules ? c.count : c.rules.length;
}

/** Whether two chains hold the same rules in the same order, comparing packed texts whole. */
export function sameRules(a: HasRules, b: HasRules): boolean {
  if (a === b) return true;
  if (a instanceof PackedRules && b instanceof PackedRules) return a.count === b.count && a.text === b.text;
  const ar = a.rules;
  const br = b.rules;
  if (ar === br) return true;
  if (ar.length !== br.length) return false;
  for (let i = 0; i < ar.length; i++) if (ar[i] !== br[i]) return false;
  return true;
}
