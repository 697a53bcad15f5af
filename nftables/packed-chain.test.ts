import { describe, expect, it } from 'vitest';
import { ruleCount, sameRules as sameChainRules } from '../proxier/packed-rules.ts';
import { PackedChain } from './packed-chain.ts';
import type { NftChain } from './model.ts';
import { Transaction } from './transaction.ts';

const RULES = ['ip saddr 10.0.0.1 jump mark-for-masquerade', 'update @affinity-X { ip saddr }', 'meta l4proto tcp dnat to 10.0.0.1:80'];

describe('nftables PackedChain', () => {
  it('gives back the very rules it was built from, and the plain chain shape as JSON', () => {
    for (const rules of [[], ['drop'], RULES]) {
      const c = new PackedChain('endpoint-X', rules);
      expect(c.rules).toEqual(rules);
      expect(ruleCount(c)).toBe(rules.length);
      expect(JSON.parse(JSON.stringify(c))).toEqual({ name: 'endpoint-X', base: null, comment: null, rules });
    }
  });

  it('writes the same transaction as the plain chain, sets it names declared first', () => {
    const set = {
      name: 'affinity-X',
      kind: 'set' as const,
      type: 'ipv4_addr',
      flags: ['dynamic', 'timeout'],
      timeout: 10800,
      comment: null,
      elements: null,
    };
    for (const rules of [[], ['drop'], RULES]) {
      const packed = new Transaction('ip', [set]);
      packed.rewriteChain(new PackedChain('endpoint-X', rules));
      const plain = new Transaction('ip', [set]);
      plain.rewriteChain({ name: 'endpoint-X', base: null, comment: null, rules });
      expect(packed.text()).toBe(plain.text());
    }
  });

  it('compares by rules whatever the form', () => {
    const a = new PackedChain('c', RULES);
    expect(sameChainRules(a, new PackedChain('c', [...RULES]))).toBe(true);
    const plainChain: NftChain = { name: 'c', base: null, comment: null, rules: RULES };
    expect(sameChainRules(a, plainChain)).toBe(true);
    expect(sameChainRules(a, new PackedChain('c', RULES.slice(1)))).toBe(false);
  });
});
