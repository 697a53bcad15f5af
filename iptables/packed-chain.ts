/**
 * An iptables user chain (KUBE-SVC/SVL/EXT/FW/SEP) whose rules are kept as one
 * text: proxier/packed-rules.ts says why and who reads what. restoreTextLength
 * and writeRules write `text`; the plan compares and counts through
 * proxier's sameRules and ruleCount.
 */
import { PackedRules } from '../proxier/packed-rules.ts';
import type { Chain } from './ruleset.ts';

export class PackedChain extends PackedRules implements Chain {
  get policy(): null {
    return null;
  }

  /** The plain chain's shape (JSON output, e.g. the debug endpoints, does not change). */
  toJSON(): Chain {
    return { name: this.name, policy: null, rules: this.rules };
  }
}
