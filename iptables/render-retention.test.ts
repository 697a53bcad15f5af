/**
 * What the iptables mode's render cache keeps per service port between syncs
 * (its ServiceRender: entries of the top-level chains and its KUBE-SVC/SEP
 * chains), measured on 2,000 services of one port with 5 endpoints each. At
 * 10,000 service ports every 1 KB here is 10 MB of the agent's heap.
 */
import { describe, expect, it } from 'vitest';
import { measureInChild } from '../test/retention-cluster.ts';

describe('iptables mode memory per service port', () => {
  it('the render cache keeps a 5-endpoint service port in under 2.8 KB: each chain one text, flat names, lists at their size (was ~3.7 KB)', async () => {
    const { ports, perPort, rules } = await measureInChild<{ ports: number; perPort: number; rules: number }>(
      2000,
      [`import { DEFAULT_RENDER_OPTIONS, RenderCache, renderRuleset } from 'iptables/render.ts';`],
      `const snapshot = buildSnapshot();
const detectLocal = { mode: 'ClusterCIDR', clusterCIDRs: ['10.0.0.0/8'], bridgeInterface: '', interfaceNamePrefix: '' };
const before = heap();
const kept = renderRuleset(snapshot, { ...DEFAULT_RENDER_OPTIONS, detectLocal }, new RenderCache()).perService;
const after = heap();
let rules = 0;
for (const { render } of kept) for (const c of render.natChains) rules += c.rules.length;
console.log(JSON.stringify({ ports: kept.length, perPort: (after - before) / kept.length, rules }));`,
    );
    expect(ports).toBe(2000);
    // Every port's chains are there: KUBE-SVC (a masquerade rule and 5 jumps) and 5 KUBE-SEP of 2 rules each.
    expect(rules).toBe(2000 * 16);
    // Measured on Node 24: ~3,720 bytes with each chain's rules an array of strings (and names kept as
    // "KUBE-SEP-" + hash pairs), ~2,260 since.
    expect(perPort).toBeLessThan(2800);
  }, 60_000);
});
