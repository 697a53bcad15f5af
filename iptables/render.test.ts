import { describe, expect, it } from 'vitest';
import type { ServicePortState, Snapshot } from '../proxier/types.ts';
import { endpoint, nodeInfo, portState, servicePort } from '../test/domain.ts';
import { DEFAULT_RENDER_OPTIONS, RenderCache, renderRuleset, type RenderOptions } from './render.ts';
import { probability } from './render-endpoints.ts';
import { getChain } from './ruleset.ts';
import { toRestoreText } from './restore-text.ts';

const node = nodeInfo({ podCIDRs: ['10.0.0.0/24'] });
const sp = servicePort;
const ep = endpoint;
const state = portState;
const opts: RenderOptions = {
  ...DEFAULT_RENDER_OPTIONS,
  detectLocal: { mode: 'ClusterCIDR', clusterCIDRs: ['10.0.0.0/8'], bridgeInterface: '', interfaceNamePrefix: '' },
};
function snap(services: ServicePortState[]): Snapshot {
  return { family: 'IPv4', node, services };
}

describe('renderRuleset', () => {
  it("writes upstream's rules for a ClusterIP service with one endpoint (syncProxyRules restore input, pod CIDR 10.0.0.0/8)", () => {
    const { ruleset } = renderRuleset(snap([state(sp(), [ep('10.180.0.1')])]), opts);
    expect(getChain(ruleset, 'nat', 'KUBE-SERVICES')?.rules).toEqual([
      '-m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O',
      '-m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS',
    ]);
    expect(getChain(ruleset, 'nat', 'KUBE-SVC-XPGD46QRK7WJZT7O')?.rules).toEqual([
      '-m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ',
      '-m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -j KUBE-SEP-SXIVWICOYRO3J4NJ',
    ]);
    expect(getChain(ruleset, 'nat', 'KUBE-SEP-SXIVWICOYRO3J4NJ')?.rules).toEqual([
      '-m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ',
      '-m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80',
    ]);
    expect(getChain(ruleset, 'nat', 'KUBE-POSTROUTING')?.rules).toEqual([
      '-m mark ! --mark 0x00004000/0x00004000 -j RETURN',
      '-j MARK --xor-mark 0x00004000',
      '-m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
    ]);
    expect(getChain(ruleset, 'filter', 'KUBE-FIREWALL')?.rules).toEqual([
      '-m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP',
    ]);
    // Built-in chains hold the jump rules in upstream's final order.
    expect(getChain(ruleset, 'filter', 'INPUT')?.rules.map((r) => /-j (\S+)$/.exec(r)?.[1])).toEqual([
      'KUBE-FIREWALL',
      'KUBE-PROXY-FIREWALL',
      'KUBE-NODEPORTS',
      'KUBE-EXTERNAL-SERVICES',
    ]);
  });

  it('declares chains and rules in restore order, skipping or inserting built-in jumps', () => {
    const { ruleset } = renderRuleset(snap([state(sp(), [ep('10.180.0.1')])]), opts);
    const skip = toRestoreText(ruleset);
    expect(skip).not.toMatch(/PREROUTING/);
    expect(skip.split('\n').slice(0, 7)).toEqual([
      '*filter',
      ':KUBE-SERVICES - [0:0]',
      ':KUBE-EXTERNAL-SERVICES - [0:0]',
      ':KUBE-FORWARD - [0:0]',
      ':KUBE-NODEPORTS - [0:0]',
      ':KUBE-PROXY-FIREWALL - [0:0]',
      ':KUBE-FIREWALL - [0:0]',
    ]);
    const insert = toRestoreText(ruleset, { builtins: 'insert' });
    expect(insert).toContain('-I PREROUTING 1 -m comment --comment "kubernetes service portals" -j KUBE-SERVICES');
    expect(insert).toContain('-I INPUT 1 -j KUBE-FIREWALL');
  });

  it('REJECTs a service without endpoints in filter and writes no nat chain for it', () => {
    const { ruleset } = renderRuleset(snap([state(sp({ nodePort: 3001, externalIPs: ['192.168.99.11'] }), [])]), opts);
    expect(getChain(ruleset, 'filter', 'KUBE-SERVICES')?.rules).toEqual([
      '-m comment --comment "ns1/svc1:p80 has no endpoints" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j REJECT',
    ]);
    expect(getChain(ruleset, 'filter', 'KUBE-EXTERNAL-SERVICES')?.rules).toEqual([
      '-m comment --comment "ns1/svc1:p80 has no endpoints" -m tcp -p tcp -d 192.168.99.11 --dport 80 -j REJECT',
      '-m comment --comment "ns1/svc1:p80 has no endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 3001 -j REJECT',
    ]);
    expect(ruleset.tables[1]!.chains.filter((c) => c.name.startsWith('KUBE-SVC'))).toEqual([]);
  });

  it('writes the probability ladder and ClientIP affinity', () => {
    const eps = [ep('10.0.1.1'), ep('10.0.1.2'), ep('10.0.1.3')];
    const { ruleset } = renderRuleset(snap([state(sp({ sessionAffinityTimeout: 10800 }), eps)]), { ...opts, detectLocal: null });
    const rules = getChain(ruleset, 'nat', 'KUBE-SVC-XPGD46QRK7WJZT7O')!.rules;
    expect(rules).toHaveLength(6); // 3 affinity + 3 jumps, no masquerade rule without a detector
    expect(rules[0]).toMatch(
      /^-m comment --comment "ns1\/svc1:p80 -> 10.0.1.1:80" -m recent --name (KUBE-SEP-\w+) --rcheck --seconds 10800 --reap -j \1$/,
    );
    expect(rules[3]).toContain('-m statistic --mode random --probability 0.3333333333 -j KUBE-SEP-');
    expect(rules[4]).toContain('--probability 0.5000000000 -j KUBE-SEP-');
    expect(rules[5]).not.toContain('statistic');
    const sep = ruleset.tables[1]!.chains.find((c) => c.name.startsWith('KUBE-SEP-'))!;
    expect(sep.rules[1]).toBe(
      `-m comment --comment ns1/svc1:p80 -m recent --name ${sep.name} --set -m tcp -p tcp -j DNAT --to-destination 10.0.1.1:80`,
    );
  });

  it('leaves per-endpoint comments out in large-cluster mode', () => {
    const eps = Array.from({ length: 3 }, (_, i) => ep(`10.0.2.${i + 1}`));
    const { ruleset, largeClusterMode } = renderRuleset(snap([state(sp(), eps)]), { ...opts, largeClusterThreshold: 2 });
    expect(largeClusterMode).toBe(true);
    const sep = ruleset.tables[1]!.chains.find((c) => c.name.startsWith('KUBE-SEP-'))!;
    expect(sep.rules[0]).toBe('-s 10.0.2.1 -j KUBE-MARK-MASQ');
  });

  it('restricts node ports to --nodeport-addresses and honours localhost settings', () => {
    const r = renderRuleset(snap([]), { ...opts, nodePortAddresses: ['192.168.0.0/16', '127.0.0.0/8'], localhostNodePorts: false });
    expect(getChain(r.ruleset, 'nat', 'KUBE-SERVICES')?.rules).toEqual([
      '-m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -d 192.168.0.2 -j KUBE-NODEPORTS',
    ]);
    expect(r.warnings.join()).toMatch(/IPv4 loopback 127.0.0.1.*disabled/);
    expect(getChain(r.ruleset, 'filter', 'KUBE-FIREWALL')).toBeUndefined();
    const off = renderRuleset(snap([]), { ...opts, localhostNodePorts: false });
    expect(getChain(off.ruleset, 'nat', 'KUBE-SERVICES')?.rules[0]).toContain('-m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS');
  });

  it('gives NodePorts on every address, localhost included, to a family --nodeport-addresses lists no CIDR of (upstream NewNodePortAddresses)', () => {
    const r = renderRuleset(snap([]), { ...opts, nodePortAddresses: ['fd00::/64'] });
    expect(getChain(r.ruleset, 'nat', 'KUBE-SERVICES')?.rules).toEqual([
      '-m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS',
    ]);
    expect(getChain(r.ruleset, 'filter', 'KUBE-FIREWALL')?.rules).toHaveLength(1); // localhost NodePorts on: the martian guard
    expect(r.warnings).toEqual([]);
  });

  it("puts NodePorts on this host's interface addresses inside --nodeport-addresses, not on a Node-only address; the node IP stays the Node's (upstream syncProxyRules: GetNodeIPs; proxier.nodeIP)", () => {
    // An IPv6-primary node's IPv4 family: its IPv4 node IP is the secondary one.
    const cloud = nodeInfo({
      addresses: ['192.168.0.2', '192.168.0.200'],
      primaryIP: 'fd00::2',
      secondaryIP: '192.168.0.2',
      podCIDRs: ['10.0.0.0/24'],
    });
    const lb = state(sp({ loadBalancerVIPs: ['1.2.3.4'], loadBalancerSourceRanges: ['192.168.0.2/32'] }), [ep('10.180.0.1')]);
    const read: Snapshot = {
      family: 'IPv4',
      node: cloud,
      services: [lb],
      hostAddresses: ['127.0.0.1', '10.9.0.1', '192.168.0.7', '192.168.0.2', '::1'],
    };
    const r = renderRuleset(read, { ...opts, nodePortAddresses: ['192.168.0.0/24'] });
    expect(getChain(r.ruleset, 'nat', 'KUBE-SERVICES')?.rules.filter((x) => x.includes('KUBE-NODEPORTS'))).toEqual([
      '-m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -d 192.168.0.7 -j KUBE-NODEPORTS',
      '-m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -d 192.168.0.2 -j KUBE-NODEPORTS',
    ]);
    // The node may reach its own load balancer when the ranges hold its node IP, the Node's (not the interfaces' first).
    const fw = r.ruleset.tables[1]!.chains.find((c) => c.name.startsWith('KUBE-FW-'))!;
    expect(fw.rules.some((x) => x.includes(' -s 1.2.3.4 -j KUBE-EXT-'))).toBe(true);
    // From objects alone (render, trace --objects): the Node's addresses and loopback.
    const fromObjects = renderRuleset({ family: 'IPv4', node: cloud, services: [lb] }, { ...opts, nodePortAddresses: ['192.168.0.0/24'] });
    expect(
      getChain(fromObjects.ruleset, 'nat', 'KUBE-SERVICES')
        ?.rules.filter((x) => x.includes('KUBE-NODEPORTS'))
        .map((x) => x.split(' -d ')[1]),
    ).toEqual(['192.168.0.2 -j KUBE-NODEPORTS', '192.168.0.200 -j KUBE-NODEPORTS']);
  });

  it('re-renders only services whose state object changed when given a cache', () => {
    const cache = new RenderCache();
    const a = state(sp(), [ep('10.0.1.1')]);
    const b = state(sp({ key: 'ns2/svc2:p80', clusterIP: '172.30.0.42' }), [ep('10.0.1.2')]);
    const first = renderRuleset(snap([a, b]), opts, cache);
    const b2 = state(b.service, [ep('10.0.1.3')]);
    const second = renderRuleset(snap([a, b2]), opts, cache);
    const chainOf = (r: typeof first, name: string) => r.ruleset.tables[1]!.chains.find((c) => c.name === name);
    expect(chainOf(second, 'KUBE-SVC-XPGD46QRK7WJZT7O')).toBe(chainOf(first, 'KUBE-SVC-XPGD46QRK7WJZT7O'));
    expect(chainOf(second, 'KUBE-SVC-GNZBNJ2PO5MGZ6GT')).not.toBe(chainOf(first, 'KUBE-SVC-GNZBNJ2PO5MGZ6GT'));
  });
});

describe('probability', () => {
  it('prints 1/n with 10 decimals as Go does', () => {
    expect(probability(2)).toBe('0.5000000000');
    expect(probability(3)).toBe('0.3333333333');
    expect(probability(7)).toBe('0.1428571429');
    expect(probability(100001)).toBe('0.0000099999');
    // Exact tie at the 11th decimal: Go rounds half to even.
    expect(probability(2048)).toBe('0.0004882812');
  });
});
