import { describe, expect, it } from 'vitest';
import { featuresFrom, watchesServiceCIDRs } from './desired.ts';
import { featureGateStates, inertFeatureGates, unknownFeatureGates } from './feature-gates.ts';

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

  it('acts on AllowServiceExternalIPs, the kube-proxy gate v1.36 added deprecated and on (KEP-5707, #137293): setting it off no longer stops the agent', () => {
    expect(unknownFeatureGates({ AllowServiceExternalIPs: false })).toEqual([]);
    expect(inertFeatureGates({ AllowServiceExternalIPs: false })).toEqual([]);
    expect(featuresFrom({ featureGates: {} }).allowServiceExternalIPs).toBe(true);
    expect(featuresFrom({ featureGates: { AllowServiceExternalIPs: false } }).allowServiceExternalIPs).toBe(false);
    // Deprecated gates are not switched by AllAlpha/AllBeta; kubernetes_feature_enabled names the stage as featuregate does.
    expect(featuresFrom({ featureGates: { AllAlpha: false, AllBeta: false } }).allowServiceExternalIPs).toBe(true);
    expect(featureGateStates({}).find((f) => f.name === 'AllowServiceExternalIPs')).toEqual({
      name: 'AllowServiceExternalIPs',
      stage: 'DEPRECATED',
      enabled: true,
    });
  });

  it('knows the gates v1.36 and v1.37 registered in the shared registry: client-go (AtomicFIFO, UnlockWhileProcessingFIFO, ClientsAllowTLSCacheGC, ...), apiserver, controller-manager and kube gates a kind cluster copies to every component', () => {
    expect(
      unknownFeatureGates({
        AtomicFIFO: false,
        UnlockWhileProcessingFIFO: false,
        ClientsAllowCARotation: false,
        ClientsAllowTLSCacheGC: false,
        InOrderInformers: true,
        InOrderInformersBatchProcess: true,
        ConstrainedImpersonation: true,
        ManifestBasedAdmissionControlConfig: true,
        EtcdRangeStream: true,
        ControllerManagerReleaseLeaderElectionLockOnExit: true,
        CloudControllerManagerWatchBasedRoutesReconciliation: true,
        CRDObservedGenerationTracking: true,
        WorkloadAwarePreemption: true,
        DRAResourceClaimGranularStatusAuthorization: true,
        ExtendWebSocketsToKubelet: true,
        PLEGOnDemandRelist: false,
        ServiceCIDRStatusFieldWiping: true,
      }),
    ).toEqual([]);
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
