/**
 * A regular chain whose rules are kept as one text, rules separated by "\n":
 * what the render cache keeps for every service port's chains (service-,
 * local-, external-, firewall-, endpoint-) between syncs. At 10,000 services ×
 * 5 endpoints that is 60,000 chains and 180,000 rules; an array of rule
 * strings costs each chain an array and each rule a string header. Rules never
 * hold a newline (nft reads a transaction line by line), so the text splits
 * back into the very rules.
 *
 * The transaction's rule writer, the partial sync's comparison and the object
 * count read `text` and `count` (Transaction.addRules, sameChainRules,
 * ruleCount, holdsAnonymousSets); everything else (inspect, diff, tests)
 * reads `rules`, split on demand.
 */
import type { NftChain } from './model.ts';

export class PackedChain implements NftChain {
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

  get base(): null {
    return null;
  }

  get comment(): null {
    return null;
  }

  get rules(): readonly string[] {
    return this.count === 0 ? [] : this.text.split('\n');
  }

  /** The plain chain's shape (JSON output does not change). */
  toJSON(): NftChain {
    return { name: this.name, base: null, comment: null, rules: this.rules };
  }
}

/** How many rules a chain holds, without splitting a packed one. */
export function ruleCount(c: NftChain): number {
  return c instanceof PackedChain ? c.count : c.rules.length;
}

/** Whether two chains hold the same rules in the same order. */
export function sameChainRules(a: NftChain, b: NftChain): boolean {
  if (a === b) return true;
  if (a instanceof PackedChain && b instanceof PackedChain) return a.count === b.count && a.text === b.text;
  const ar = a.rules;
  const br = b.rules;
  if (ar === br) return true;
  if (ar.length !== br.length) return false;
  for (let i = 0; i < ar.length; i++) if (ar[i] !== br[i]) return false;
  return true;
}
