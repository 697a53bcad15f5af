import { describe, expect, it } from 'vitest';
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

  it('names the known gates kube-proxy-ts does not act on', () => {
    expect(inertFeatureGates({ PreferSameTrafficDistribution: false, TopologyAwareHints: true, Bogus: true })).toEqual(['TopologyAwareHints']);
  });
});
