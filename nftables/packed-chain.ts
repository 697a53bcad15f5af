/**
 * An nftables regular chain (service-, local-, external-, firewall-,
 * endpoint-) whose rules are kept as one text: proxier/packed-rules.ts says
 * why and who reads what. Transaction.addRules writes `text`; the partial
 * sync, the object count and holdsAnonymousSets compare and count through
 * proxier's sameRules and ruleCount.
 */
import { PackedRules } from '../proxier/packed-rules.ts';
import type { NftChain } from './model.ts';

export class PackedChain extends PackedRules implements NftChain {
  get base(): null {
    return null;
  }

  get comment(): null {
    return null;
  }

  /** The plain chain's shape (JSON output does not change). */
  toJSON(): NftChain {
    return { name: this.name, base: null, comment: null, rules: this.rules };
  }
}
