/**
 * TopRulesCache: the top-level chains' rules are gathered anew only when
 * some service port's share of them changed; an endpoint change hands back
 * the very arrays of the previous render (what plan.ts skips by identity),
 * and the result is always what a render without a cache gives.
 */
import { describe, expect, it } from 'vitest';
import type { ServicePortState } from '../proxier/types.ts';
import { endpoint, portState, servicePort, snapshotOf } from '../test/domain.ts';
import { DEFAULT_RENDER_OPTIONS, RenderCache, renderRuleset } from './render.ts';
import { getChain } from './ruleset.ts';
import { toRestoreText } from './restore-text.ts';

const opts = { ...DEFAULT_RENDER_OPTIONS, nodePortAddresses: ['192.168.0.0/24'] };
const sp = (i: number) => servicePort({ key: `ns/svc${i}:p80`, namespace: 'ns', name: `svc${i}`, clusterIP: `172.30.0.${i}`, nodePort: 30000 + i });
const svc = (i: number, ips: string[]): ServicePortState =>
  portState(
    sp(i),
    ips.map((ip) => endpoint(ip)),
  );
const top = (r: ReturnType<typeof renderRuleset>, table: string, chain: string) => getChain(r.topLevel, table, chain)!.rules;

describe('TopRulesCache', () => {
  it('hands back the same top-level rule arrays after an endpoint change', () => {
    const cache = new RenderCache();
    const a = svc(1, ['10.0.0.1']);
    const first = renderRuleset(snapshotOf([a, svc(2, ['10.0.0.2'])]), opts, cache);
    const second = renderRuleset(snapshotOf([a, svc(2, ['10.0.0.3'])]), opts, cache);
    for (const [table, chain] of [
      ['nat', 'KUBE-SERVICES'],
      ['nat', 'KUBE-NODEPORTS'],
      ['filter', 'KUBE-SERVICES'],
    ] as const) {
      expect(top(second, table, chain)).toBe(top(first, table, chain));
    }
    expect(toRestoreText(second.ruleset)).toBe(toRestoreText(renderRuleset(snapshotOf([a, svc(2, ['10.0.0.3'])]), opts).ruleset));
    expect(toRestoreText(second.ruleset)).toContain('10.0.0.3');
  });

  it('gathers anew when a share changes: a service added, a service gone, endpoints to none', () => {
    const cache = new RenderCache();
    const a = svc(1, ['10.0.0.1']);
    const steps = [[a], [a, svc(2, ['10.0.0.2'])], [a, svc(2, [])], [svc(2, [])]];
    let previous: ReturnType<typeof renderRuleset> | null = null;
    for (const services of steps) {
      const r = renderRuleset(snapshotOf(services), opts, cache);
      const uncached = renderRuleset(snapshotOf(services), opts);
      expect(toRestoreText(r.ruleset)).toBe(toRestoreText(uncached.ruleset));
      expect(r.noLocalEndpoints).toEqual(uncached.noLocalEndpoints);
      if (previous) expect(top(r, 'nat', 'KUBE-SERVICES')).not.toBe(top(previous, 'nat', 'KUBE-SERVICES'));
      previous = r;
    }
  });

  it('gathers anew when only the KUBE-NODEPORTS tail of KUBE-SERVICES changes', () => {
    const cache = new RenderCache();
    const services = [svc(1, ['10.0.0.1'])];
    const first = renderRuleset(snapshotOf(services), opts, cache);
    const second = renderRuleset(snapshotOf(services), { ...opts, nodePortAddresses: ['192.168.1.0/24'] }, cache);
    expect(top(second, 'nat', 'KUBE-SERVICES')).not.toEqual(top(first, 'nat', 'KUBE-SERVICES'));
    expect(top(second, 'nat', 'KUBE-SERVICES')).toEqual(
      top(renderRuleset(snapshotOf(services), { ...opts, nodePortAddresses: ['192.168.1.0/24'] }), 'nat', 'KUBE-SERVICES'),
    );
  });
});
