import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { endpointChainName, hash16, serviceChainNames } from './chain-names.ts';
import { isServiceChain } from './chains.ts';

describe('chain names match upstream kube-proxy', () => {
  // Vectors from upstream's proxier_test.go expected dumps.
  it.each([
    ['ns1/svc1:p80', 'XPGD46QRK7WJZT7O'],
    ['ns2/svc2:p80', 'GNZBNJ2PO5MGZ6GT'],
    ['ns3/svc3:p80', 'X27LE4BHSL4DOUIK'],
    ['ns4/svc4:p80', '4SW47YFZTEDKD3PK'],
    ['ns5/svc5:p80', 'NUKIZ6OKUXPJNT4C'],
  ])('%s/tcp hashes to %s', (key, h) => {
    expect(serviceChainNames({ key, protocol: 'TCP' })).toEqual({
      svc: `KUBE-SVC-${h}`,
      svl: `KUBE-SVL-${h}`,
      ext: `KUBE-EXT-${h}`,
      fw: `KUBE-FW-${h}`,
    });
  });

  it('names endpoint chains from service, protocol and ip:port', () => {
    expect(endpointChainName({ key: 'ns1/svc1:p80', protocol: 'TCP' }, { ip: '10.180.0.1', port: 80 })).toBe('KUBE-SEP-SXIVWICOYRO3J4NJ');
  });

  it('hash16 is base32 of the first 80 bits of sha256, as upstream hashes (any text)', () => {
    // The plain bit loop (RFC 4648 base32 of the digest, cut to 16 characters) as the reference.
    const reference = (text: string): string => {
      const digest = createHash('sha256').update(text).digest();
      let bits = '';
      for (const byte of digest.subarray(0, 10)) bits += byte.toString(2).padStart(8, '0');
      let out = '';
      for (let i = 0; i < 80; i += 5) out += 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'[parseInt(bits.slice(i, i + 5), 2)];
      return out;
    };
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => hash16(text) === reference(text)),
      { numRuns: 2000 },
    );
  });

  it('keeps names within the 28-character iptables limit and recognises them', () => {
    const h = hash16('anything');
    expect(h).toMatch(/^[A-Z2-7]{16}$/);
    expect(`KUBE-SVC-${h}`.length).toBeLessThanOrEqual(28);
    expect(isServiceChain('KUBE-SEP-SXIVWICOYRO3J4NJ')).toBe(true);
    expect(isServiceChain('KUBE-SERVICES')).toBe(false);
  });
});
