import { describe, expect, it } from 'vitest';
import { watchesServiceCIDRs } from './desired.ts';
import { inertFeatureGates, unknownFeatureGates } from './feature-gates.ts';

describe('feature gates', () => {
  it('refuses names no upstream registry holds, as featuregate.SetFromMap does ("unrecognized feature gate")', () => {
    expect(unknownFeatureGates({ PreferSameTrafficDistribution: true, TopologyAwareHint: true, topologyawarehints: true })).toEqual([
      'TopologyAwareHint',
      'topologyawarehints',
    ]);
  });

  it("accepts AllAlpha, AllBeta, other components' gates and kube-proxy gates of earlier releases", () => {
    expect(
      unknownFeatureGates({
        AllAlpha: false,
        AllBeta: true,
        KubeletInUserNamespace: true,
        APIServerTracing: true,
        IPv6DualStack: true,
        MinimizeIPTablesRestore: true,
      }),
    ).toEqual([]);
  });

  it("knows component-base's metrics gate NativeHistograms, which kube-proxy registers (its init: metricsfeatures.AddFeatureGates; alpha in v1.36, beta in v1.37), as a gate it does not act on", () => {
    expect(unknownFeatureGates({ NativeHistograms: true })).toEqual([]);
    expect(inertFeatureGates({ NativeHistograms: true })).toEqual(['NativeHistograms']);
  });

  it('names the known gates kube-proxy-ts does not act on', () => {
    expect(inertFeatureGates({ PreferSameTrafficDistribution: false, TopologyAwareHints: true, Bogus: true })).toEqual(['TopologyAwareHints']);
  });

  it('acts on MultiCIDRServiceAllocator (GA and on by default in 1.33): ServiceCIDRs are watched in nftables mode unless it is off', () => {
    expect(inertFeatureGates({ MultiCIDRServiceAllocator: false })).toEqual([]);
    expect(watchesServiceCIDRs({ mode: 'nftables', featureGates: {} })).toBe(true);
    expect(watchesServiceCIDRs({ mode: 'nftables', featureGates: { MultiCIDRServiceAllocator: true } })).toBe(true);
    expect(watchesServiceCIDRs({ mode: 'nftables', featureGates: { MultiCIDRServiceAllocator: false } })).toBe(false);
    // Upstream's iptables proxier ignores them (its OnServiceCIDRsChanged does nothing): not asked for.
    expect(watchesServiceCIDRs({ mode: 'iptables', featureGates: { MultiCIDRServiceAllocator: true } })).toBe(false);
    expect(watchesServiceCIDRs({ mode: 'userspace', featureGates: {} })).toBe(false);
  });
});
