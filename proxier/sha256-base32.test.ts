import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sha256Base32 } from './sha256-base32.ts';

/** RFC 4648 base32 of a digest, bit by bit (the slow, obvious way). */
function reference(text: string, chars: number): string {
  const digest = createHash('sha256').update(text).digest();
  let bitsText = '';
  for (const byte of digest) bitsText += byte.toString(2).padStart(8, '0');
  let s = '';
  for (let i = 0; i < chars; i++) s += 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'[parseInt(bitsText.slice(i * 5, i * 5 + 5), 2)];
  return s;
}

describe('sha256Base32', () => {
  it('is RFC 4648 base32 of sha256 for the 8 (upstream nftables hashAndTruncate) and 16 (upstream iptables portProtoHash) characters upstream uses', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary' }),
        fc.constantFrom(1, 7, 8, 13, 16, 51),
        (text, chars) => sha256Base32(text, chars) === reference(text, chars),
      ),
      { numRuns: 500 },
    );
  });

  it('matches a name upstream kube-proxy writes', () => {
    // upstream pkg/proxy/iptables/proxier_test.go: KUBE-SVC-XPGD46QRK7WJZT7O is ns1/svc1:p80 tcp
    expect(sha256Base32('ns1/svc1:p80tcp', 16)).toBe('XPGD46QRK7WJZT7O');
  });
});
