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

  it('keeps names within the 28-character iptables limit and recognises them', () => {
    const h = hash16('anything');
    expect(h).toMatch(/^[A-Z2-7]{16}$/);
    expect(`KUBE-SVC-${h}`.length).toBeLessThanOrEqual(28);
    expect(isServiceChain('KUBE-SEP-SXIVWICOYRO3J4NJ')).toBe(true);
    expect(isServiceChain('KUBE-SERVICES')).toBe(false);
  });
});
