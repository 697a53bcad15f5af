/**
 * A user chain whose rules are kept as one text, rules separated by "\n": what
 * the render cache keeps for every per-service chain (KUBE-SVC/SVL/EXT/FW/SEP)
 * between syncs. At 10,000 services × 5 endpoints that is 60,000 chains and
 * 160,000 rules; an array of rule strings costs each chain an array and each
 * rule a string header, ~7 MB of the mode's retained heap. Rules never hold a
 * newline (iptables-restore input is line-based), so the text splits back into
 * the very rules.
 *
 * The writers of restore text, the plan's comparison and the rule counts read
 * `text` and `count` (restoreTextLength, writeRules, sameRules, ruleCount);
 * everything else (inspect, diff, tests) reads `rules`, split on demand.
 */
import type { Chain } from './ruleset.ts';

export class PackedChain implements Chain {
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

  get policy(): null {
    return null;
  }

  get rules(): readonly string[] {
    return this.count === 0 ? [] : this.text.split('\n');
  }

  /** The plain chain's shape (JSON output, e.g. the debug endpoints, does not change). */
  toJSON(): Chain {
    return { name: this.name, policy: null, rules: this.rules };
  }
}

/** How many rules a chain holds, without splitting a packed one. */
export function ruleCount(c: Chain): number {
  return c instanceof PackedChain ? c.count : c.rules.length;
}

/** Whether two chains hold the same rules in the same order (a missing one never does). */
export function sameRules(a: Chain | undefined, b: Chain): boolean {
  if (!a) return false;
  if (a === b) return true;
  if (a instanceof PackedChain && b instanceof PackedChain) return a.count === b.count && a.text === b.text;
  const ar = a.rules;
  const br = b.rules;
  if (ar === br) return true;
  if (ar.length !== br.length) return false;
  for (let i = 0; i < ar.length; i++) if (ar[i] !== br[i]) return false;
  return true;
}
