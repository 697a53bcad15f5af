import { describe, expect, it } from 'vitest';
import { ruleCount, sameRules } from '../proxier/packed-rules.ts';
import { PackedChain } from './packed-chain.ts';
import { restoreText, restoreTextLength, type TableSection } from './restore-text.ts';
import type { Chain } from './ruleset.ts';

const RULES = ['-m comment --comment "ns/a:p" -s 10.0.0.1 -j KUBE-MARK-MASQ', '-m tcp -p tcp -j DNAT --to-destination 10.0.0.1:80'];
const plain = (name: string, rules: readonly string[]): Chain => ({ name, policy: null, rules });

describe('PackedChain', () => {
  it('gives back the very rules it was built from, and the plain chain shape as JSON', () => {
    for (const rules of [[], ['-j X'], RULES]) {
      const c = new PackedChain('KUBE-SEP-AAAAAAAAAAAAAAAA', rules);
      expect(c.rules).toEqual(rules);
      expect(ruleCount(c)).toBe(rules.length);
      expect(c.policy).toBeNull();
      expect(JSON.parse(JSON.stringify(c))).toEqual(plain(c.name, rules));
    }
  });

  it('writes the same restore text as the plain chain, of the length restoreTextLength counts', () => {
    for (const rules of [[], ['-j X'], RULES, [...RULES, ...RULES]]) {
      const packed: TableSection[] = [{ table: 'nat', chains: [new PackedChain('KUBE-SVC-X', rules), plain('KUBE-SEP-Y', ['-j Z'])] }];
      const expected: TableSection[] = [{ table: 'nat', chains: [plain('KUBE-SVC-X', rules), plain('KUBE-SEP-Y', ['-j Z'])] }];
      expect(restoreText(packed)).toBe(restoreText(expected));
      expect(restoreTextLength(packed)).toBe(restoreText(expected).length);
    }
  });

  it('compares by rules whatever the form (the plan rewrites a chain only when they differ)', () => {
    const a = new PackedChain('C', RULES);
    expect(sameRules(a, new PackedChain('C', [...RULES]))).toBe(true);
    expect(sameRules(a, plain('C', RULES))).toBe(true);
    expect(sameRules(plain('C', RULES), a)).toBe(true);
    expect(sameRules(a, new PackedChain('C', RULES.slice(1)))).toBe(false);
    expect(sameRules(a, new PackedChain('C', [RULES.join(' ')]))).toBe(false);
  });
});
