import { describe, expect, it } from 'vitest';
import type { IPFamily } from '../proxier/types.ts';
import { endpoint, nodeInfo, portState, servicePort } from '../test/domain.ts';
import { diffRulesets, formatDiff } from './diff.ts';
import { DEFAULT_RENDER_OPTIONS, renderRuleset, type RenderOptions } from './render.ts';
import type { Ruleset } from './ruleset.ts';

const opts: RenderOptions = {
  ...DEFAULT_RENDER_OPTIONS,
  detectLocal: { mode: 'ClusterCIDR', clusterCIDRs: ['10.0.0.0/8', 'fd00:10::/64'], bridgeInterface: '', interfaceNamePrefix: '' },
};

function desired(family: IPFamily, o: Partial<RenderOptions> = {}): Ruleset {
  const sp = family === 'IPv4' ? servicePort() : servicePort({ clusterIP: 'fd00:172:30::41' });
  const ep = endpoint(family === 'IPv4' ? '10.180.0.1' : 'fd00:10::1');
  return renderRuleset({ family, node: nodeInfo({ podCIDRs: [] }), services: [portState(sp, [ep])] }, { ...opts, ...o }).ruleset;
}

/** `live` with kubelet's KUBE-FIREWALL as a kubelet before 1.24 wrote it in every family: the mark-drop rule, jumps from INPUT and OUTPUT. */
function withOldKubeletFirewall(live: Ruleset): Ruleset {
  const rule = '-m comment --comment "kubernetes firewall for dropping marked packets" -m mark --mark 0x8000/0x8000 -j DROP';
  return {
    ...live,
    tables: live.tables.map((t) =>
      t.name !== 'filter'
        ? t
        : {
            ...t,
            chains: [
              ...t.chains.map((c) => (c.name === 'INPUT' || c.name === 'OUTPUT' ? { ...c, rules: [...c.rules, '-j KUBE-FIREWALL'] } : c)),
              ...(t.chains.some((c) => c.name === 'KUBE-FIREWALL') ? [] : [{ name: 'KUBE-FIREWALL', policy: null, rules: [rule] }]),
            ],
          },
    ),
  };
}

describe('diffRulesets and kubelet’s KUBE-FIREWALL', () => {
  it('leaves it out where kube-proxy does not write it: IPv6 (kubelet syncIPTablesRules writes it for IPv4 only since 1.24, for both families before)', () => {
    const want = desired('IPv6');
    expect(want.tables.find((t) => t.name === 'filter')!.chains.some((c) => c.name === 'KUBE-FIREWALL')).toBe(false);
    const d = diffRulesets(want, withOldKubeletFirewall(want));
    expect(d.identical, formatDiff(d)).toBe(true);
  });

  it('leaves it out with --iptables-localhost-nodeports=false, where only kubelet writes it (upstream syncProxyRules writes it only with localhost NodePorts)', () => {
    const want = desired('IPv4', { localhostNodePorts: false });
    expect(want.tables.find((t) => t.name === 'filter')!.chains.some((c) => c.name === 'KUBE-FIREWALL')).toBe(false);
    expect(diffRulesets(want, withOldKubeletFirewall(want)).identical).toBe(true);
  });

  it('still compares it where kube-proxy writes it: a missing or changed KUBE-FIREWALL is drift', () => {
    const want = desired('IPv4');
    const filter = want.tables.find((t) => t.name === 'filter')!;
    expect(filter.chains.some((c) => c.name === 'KUBE-FIREWALL')).toBe(true);
    const without: Ruleset = {
      ...want,
      tables: want.tables.map((t) => (t === filter ? { ...t, chains: t.chains.filter((c) => c.name !== 'KUBE-FIREWALL') } : t)),
    };
    expect(formatDiff(diffRulesets(want, without))).toMatch(/filter KUBE-FIREWALL: missing/);
    const old = {
      ...want,
      tables: want.tables.map((t) =>
        t === filter ? { ...t, chains: t.chains.map((c) => (c.name === 'KUBE-FIREWALL' ? { ...c, rules: ['-j DROP'] } : c)) } : t,
      ),
    };
    expect(diffRulesets(want, old).identical).toBe(false);
  });
});
