/** The one table of kube-proxy's chains: who owns a chain found in a live table, and what each mode writes. */
import { describe, expect, it } from 'vitest';
import { chainOwner, fixedChainsOf, isServiceChain, serviceChainHash } from './chains.ts';

describe('chainOwner', () => {
  it.each([
    ['KUBE-SERVICES', 'iptables'],
    ['KUBE-MARK-MASQ', 'iptables'],
    ['KUBE-PROXY-CANARY', 'iptables'],
    ['KUBE-SVC-XPGD46QRK7WJZT7O', 'iptables'],
    ['KUBE-SEP-SXIVWICOYRO3J4NJ', 'iptables'],
    ['KUBE-XLB-XPGD46QRK7WJZT7O', 'iptables'],
    ['KUBE-PORTALS-CONTAINER', 'userspace'],
    ['KUBE-NODEPORT-NON-LOCAL', 'userspace'],
    ['KUBE-FIREWALL', 'kubelet'],
    ['KUBE-MARK-DROP', null],
    ['KUBE-KUBELET-CANARY', null],
    ['MY-FW', null],
  ])('%s belongs to %s', (name, owner) => {
    expect(chainOwner(name)).toBe(owner);
  });
});

describe('service chains', () => {
  it('counts the chains written now as service chains, not the pre-1.24 KUBE-XLB- ones (upstream: cleanup only)', () => {
    expect(isServiceChain('KUBE-SEP-SXIVWICOYRO3J4NJ')).toBe(true);
    expect(isServiceChain('KUBE-FW-SXIVWICOYRO3J4NJ')).toBe(true);
    expect(isServiceChain('KUBE-XLB-SXIVWICOYRO3J4NJ')).toBe(false);
    expect(isServiceChain('KUBE-SERVICES')).toBe(false);
  });

  it("groups a service port's EXT/FW/SVC/SVL chains by their shared hash; endpoint chains have none", () => {
    expect(['KUBE-EXT-H', 'KUBE-FW-H', 'KUBE-SVC-H', 'KUBE-SVL-H'].map(serviceChainHash)).toEqual(['H', 'H', 'H', 'H']);
    expect(serviceChainHash('KUBE-SEP-H')).toBeNull();
    expect(serviceChainHash('KUBE-SERVICES')).toBeNull();
  });
});

describe('fixedChainsOf', () => {
  it("lists each mode's fixed chains of a table in upstream's declaration order", () => {
    expect(fixedChainsOf('iptables', 'filter')).toEqual([
      'KUBE-SERVICES',
      'KUBE-EXTERNAL-SERVICES',
      'KUBE-FORWARD',
      'KUBE-NODEPORTS',
      'KUBE-PROXY-FIREWALL',
    ]);
    expect(fixedChainsOf('iptables', 'nat')).toEqual(['KUBE-SERVICES', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING', 'KUBE-MARK-MASQ']);
    expect(fixedChainsOf('userspace', 'nat')).toEqual([
      'KUBE-PORTALS-CONTAINER',
      'KUBE-PORTALS-HOST',
      'KUBE-NODEPORT-CONTAINER',
      'KUBE-NODEPORT-HOST',
    ]);
  });
});
