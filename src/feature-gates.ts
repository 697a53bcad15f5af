/**
 * Feature gates, as upstream kube-proxy's --feature-gates / featureGates
 * reads them: its gate registry holds every Kubernetes feature (kubelet,
 * apiserver, scheduler... ones too, since all components share
 * utilfeature.DefaultFeatureGate), plus AllAlpha and AllBeta; a name it does
 * not know is refused ("unrecognized feature gate", featuregate.SetFromMap,
 * checked again by validation.Validate).
 *
 * The registry changes with every release, and kube-proxy-ts serves clusters
 * of several. KNOWN below is the union of the names in kubernetes/kubernetes
 * pkg/features/kube_features.go (the v1.32 development tree, 0021731d) and
 * versioned_kube_features.go (the v1.33 one, 20b2eef9), the gates those files
 * gained up to v1.35 (its kube_features.go) and the scheduling and DRA gates of
 * v1.37 (kind copies a cluster's featureGates into kube-proxy's config.conf, so
 * a DRA test cluster's gates reach kube-proxy), the kube gates v1.36 and v1.37
 * added as far as their release notes and feature-gate pages name them, the
 * component-base, client-go, apiserver, apiextensions and controller-manager
 * gates those libraries register up to v1.37 (read from their staging
 * repositories' tags), and the gates
 * kube-proxy itself read in earlier releases (so a command line written for an
 * older upstream still starts). A name outside it is a typo or a gate no
 * recent upstream knows: refused, as upstream refuses it.
 */

/** Gates kube-proxy-ts acts on, with their defaults. */
export const HONOURED_FEATURE_GATES: Readonly<Record<string, boolean>> = {
  PreferSameTrafficDistribution: true,
  // v1.36 (KEP-5707, #137293), deprecated and on: off, Service.spec.externalIPs are not programmed (a hardening against
  // CVE-2020-8554 that upstream plans to make the default).
  AllowServiceExternalIPs: true,
  // ServiceCIDR objects are watched (the nftables mode drops traffic to unallocated ClusterIPs); GA in 1.33.
  MultiCIDRServiceAllocator: true,
  // component-base's alpha logging options (--log-*-split-stream, --log-*-info-buffer-size) are refused without it.
  LoggingAlphaOptions: false,
  // component-base's JSON log format is beta: turning the gate off refuses --logging-format=json.
  LoggingBetaOptions: true,
  // component-base's z-pages (KEP-4828, KEP-4827), beta and on from v1.36: /flagz and /statusz on the metrics server.
  ComponentFlagz: true,
  ComponentStatusz: true,
};

const KUBE_FEATURES = `
AllowDNSOnlyNodeCSR AllowInsecureKubeletCertificateSigningRequests AllowOverwriteTerminationGracePeriodSeconds
AllowServiceLBStatusOnNonLB AnyVolumeDataSource AppArmor AppArmorFields AuthorizeNodeWithSelectors ClusterTrustBundle
ClusterTrustBundleProjection ContainerCheckpoint CoordinatedLeaderElection CPUManager CPUManagerPolicyAlphaOptions
CPUManagerPolicyBetaOptions CPUManagerPolicyOptions CronJobsScheduledAnnotation CrossNamespaceVolumeDataSource
CSIMigrationPortworx CSIVolumeHealth CustomCPUCFSQuotaPeriod DeploymentPodReplacementPolicy DevicePluginCDIDevices
DisableAllocatorDualWrite DisableCloudProviders DisableKubeletCloudCredentialProviders DisableNodeKubeProxyVersion
DRAAdminAccess DRAResourceClaimDeviceStatus DynamicResourceAllocation ElasticIndexedJob EventedPLEG ExecProbeTimeout
ExternalServiceAccountTokenSigner GracefulNodeShutdown GracefulNodeShutdownBasedOnPodPriority HonorPVReclaimPolicy
HPAContainerMetrics HPAScaleToZero ImageMaximumGCAge ImageVolume InPlacePodVerticalScaling
InPlacePodVerticalScalingAllocatedStatus InPlacePodVerticalScalingExclusiveCPUs InTreePluginPortworxUnregister
JobBackoffLimitPerIndex JobManagedBy JobPodFailurePolicy JobPodReplacementPolicy JobSuccessPolicy
KubeletCgroupDriverFromCRI KubeletCrashLoopBackOffMax KubeletFineGrainedAuthz KubeletInUserNamespace
KubeletPodResourcesDynamicResources KubeletPodResourcesGet KubeletRegistrationGetOnExistsOnly KubeletSeparateDiskGC
KubeletTracing KubeProxyDrainingTerminatingNodes LoadBalancerIPMode LocalStorageCapacityIsolationFSQuotaMonitoring
LogarithmicScaleDown MatchLabelKeysInPodAffinity MatchLabelKeysInPodTopologySpread MaxUnavailableStatefulSet
MemoryManager MemoryQoS MultiCIDRServiceAllocator NFTablesProxyMode NodeInclusionPolicyInPodTopologySpread NodeLogQuery
NodeSwap PDBUnhealthyPodEvictionPolicy PersistentVolumeLastPhaseTransitionTime PodAndContainerStatsFromCRI
PodDeletionCost PodDisruptionConditions PodHostIPs PodIndexLabel PodLevelResources PodLifecycleSleepAction
PodLifecycleSleepActionAllowZero PodLogsQuerySplitStreams PodReadyToStartContainersCondition PodSchedulingReadiness
PortForwardWebsockets ProcMountType QOSReserved RecoverVolumeExpansionFailure RecursiveReadOnlyMounts
RelaxedDNSSearchValidation RelaxedEnvironmentVariableValidation ReloadKubeletServerCertificateFile ResourceHealthStatus
RotateKubeletServerCertificate RuntimeClassInImageCriApi SchedulerAsyncPreemption SchedulerQueueingHints
SELinuxChangePolicy SELinuxMount SELinuxMountReadWriteOncePod SeparateTaintEvictionController
ServiceAccountNodeAudienceRestriction ServiceAccountTokenJTI ServiceAccountTokenNodeBinding
ServiceAccountTokenNodeBindingValidation ServiceAccountTokenPodNodeInfo ServiceTrafficDistribution SidecarContainers
SizeMemoryBackedVolumes StatefulSetAutoDeletePVC StatefulSetStartOrdinal StorageNamespaceIndex StorageVersionMigrator
SupplementalGroupsPolicy SystemdWatchdog TopologyAwareHints TopologyManagerPolicyAlphaOptions
TopologyManagerPolicyBetaOptions TopologyManagerPolicyOptions TranslateStreamCloseWebsocketRequests
UnknownVersionInteroperabilityProxy UserNamespacesPodSecurityStandards UserNamespacesSupport VolumeAttributesClass
VolumeCapacityPriority WindowsCPUAndMemoryAffinity WindowsGracefulNodeShutdown WindowsHostNetwork WinDSR WinOverlay
`;

/** Added to kube_features.go in v1.33-v1.35 (the v1.35 development tree), and the scheduling and DRA gates of v1.37. */
const KUBE_FEATURES_1_35 = `
AuthorizePodWebsocketUpgradeCreatePermission ChangeContainerStatusOnKubeletRestart ClearingNominatedNodeNameAfterBinding
CompositePodGroup ContainerRestartRules ContainerStopSignals CSIServiceAccountTokenSecrets DeclarativeValidation
DeclarativeValidationTakeover DeploymentReplicaSetTerminatingReplicas DisableCPUQuotaWithExclusiveCPUs
DRAConsumableCapacity DRADerivedAttributes DRADeviceBindingConditions DRADeviceCompatibilityGroups DRADeviceTaintRules
DRADeviceTaints DRAExtendedResource DRAFractionalCapacityRange DRAListTypeAttributes DRANodeAllocatableResources
DRAOptionalNodeOperations DRAPartitionableDevices DRAPrioritizedList DRASchedulerFilterTimeout
DRAWorkloadResourceClaims EnvFiles GangScheduling GenericWorkload GitRepoVolumeDriver HPAConfigurableTolerance
HostnameOverride ImageVolumeWithDigest InPlacePodLevelResourcesVerticalScaling InPlacePodVerticalScalingExclusiveMemory
InPlacePodVerticalScalingSchedulerPreemption InterPodAffinityHostnameFastPath KubeletEnsureSecretPulledImages
KubeletPodResourcesListUseActivePods KubeletPSI KubeletServiceAccountTokenForCredentialProviders
MatchLabelKeysInPodTopologySpreadSelectorMerge MutableCSINodeAllocatableCount MutablePodResourcesForSuspendedJobs
MutablePVNodeAffinity MutableSchedulingDirectivesForSuspendedJobs NodeDeclaredFeatures NominatedNodeNameForExpectation
OpportunisticBatching OrderedNamespaceDeletion PodCertificateRequest PodGroupPreemptionPolicy
PodObservedGenerationTracking PodTopologyLabelsAdmission PreventStaticPodAPIReferences
ReduceDefaultCrashLoopBackOffDecay RelaxedServiceNameValidation RestartAllContainersOnContainerExits
SchedulerAsyncAPICalls SchedulerPopFromBackoffQ SchedulerPreQueueingHints StatefulSetSemanticRevisionComparison
StorageCapacityScoring StreamingCollectionEncodingToJSON StreamingCollectionEncodingToProtobuf StrictIPCIDRValidation
TaintTolerationComparisonOperators TopologyAwareWorkloadScheduling UserNamespacesHostNetworkSupport VolumeLimitScaling
`;

/**
 * Added to kube_features.go in v1.36 and v1.37: those the v1.36.0 and v1.37.0-alpha.1 release notes name, and the
 * v1.36/v1.37 KEPs' gates that have a page among kubernetes.io's feature gates. (kube_features.go of those releases
 * could not be read here; a gate missing from this list is refused, as a misspelt one is.)
 */
const KUBE_FEATURES_1_37 = `
AtomicWriteVolumeUserFields CgroupOptions ConditionalAuthorization ContainerUlimits CRIListStreaming DefaultPodSysctls
DownwardAPIAssignedResources DRANativeResources DRAResourceClaimGranularStatusAuthorization DRAResourcePoolStatus
DRASharedConsumableCapacity EmptyDirVolumeMode EvictionRequestAPI ExtendWebSocketsToKubelet GRPCContainerProbeTLS
HPAExternalMetricFallback NodeLifecycleConditions PerPodPIDLimit PersistentVolumeClaimUnusedSinceTime PLEGOnDemandRelist
PodInfoAPI ReloadKubeletClientCAFile ServiceCIDRStatusFieldWiping StaleControllerConsistencyDaemonSet
StaleControllerConsistencyJob StatefulSetRecreateStrategy WorkloadAwarePreemption
`;

/**
 * Registered into the same gate by the apiserver, apiextensions, controller-manager, component-base and client-go
 * libraries (every gate their kubernetes-1.33.0 to 1.37.0-beta.0 tags define); NativeHistograms is component-base's
 * metrics gate, which kube-proxy's init registers from v1.36.
 */
const LIBRARY_FEATURES = `
AdmissionWebhookMatchConditions AggregatedDiscoveryEndpoint AllowParsingUserUIDFromCertAuth
AllowUnsafeMalformedObjectDeletion AnonymousAuthConfigurableEndpoints APIResponseCompression APIServerIdentity
APIServerTracing APIServingWithRoutine AuthorizeWithSelectors BtreeWatchCache CBORServingAndStorage
ConcurrentWatchObjectDecode ConsistentListFromCache KMSv1 MutatingAdmissionPolicy OpenAPIEnums RemainingItemCount
RemoteRequestHeaderUID ResilientWatchCacheInitialization RetryGenerateName SeparateCacheWatchRPC StorageVersionAPI
StorageVersionHash StrictCostEnforcementForVAP StrictCostEnforcementForWebhooks StructuredAuthenticationConfiguration
StructuredAuthorizationConfiguration UnauthenticatedHTTP2DOSMitigation WatchCacheInitializationPostStartHook
WatchFromStorageWithoutResourceVersion WatchList CRDValidationRatcheting CustomResourceFieldSelectors
CloudControllerManagerWebhook ComponentFlagz ComponentStatusz ComponentSLIs ContextualLogging LoggingAlphaOptions
LoggingBetaOptions WatchListClient InformerResourceVersion ClientsAllowCBOR ClientsPreferCBOR NativeHistograms
AtomicFIFO ClientsAllowCARotation ClientsAllowTLSCacheGC InOrderInformers InOrderInformersBatchProcess
UnlockWhileProcessingFIFO APIServerWebhookAuthenticationToken AggregatedDiscoveryRemoveBetaType
ConsistentListFromCacheSkipTimeoutFallback ConstrainedImpersonation DeclarativeValidationBeta DetectCacheInconsistency
EtcdRangeStream ExcludeAdmissionWebhookVirtualResources ListFromCacheSnapshot ManifestBasedAdmissionControlConfig
ShardedListAndWatch SizeBasedListCostEstimate StructuredAuthenticationConfigurationEgressSelector
StructuredAuthenticationConfigurationJWKSMetrics TokenRequestServiceAccountUIDValidation WatchListCompression
WebhookRoundTripLoadBalancing CRDObservedGenerationTracking CloudControllerManagerWatchBasedRoutesReconciliation
ControllerManagerReleaseLeaderElectionLockOnExit
`;

/**
 * Gates kube-proxy read in releases before the ones above (removed once GA), and newer proxy gates (v1.36:
 * AllowServiceExternalIPs; v1.37: KubeProxyIPVS, KubeProxyNFTablesLocalhostNodePorts).
 */
const PROXY_FEATURES = `
EndpointSlice EndpointSliceProxying EndpointSliceTerminatingCondition IPv6DualStack IPTablesOwnershipCleanup
MinimizeIPTablesRestore MixedProtocolLBService ProxyTerminatingEndpoints ServiceInternalTrafficPolicy
ServiceLBNodePortControl ServiceLoadBalancerClass ServiceTopology SupportIPVSProxyMode PreferSameTrafficDistribution
KubeProxyIPVS KubeProxyNFTablesLocalhostNodePorts AllowServiceExternalIPs
`;

const KNOWN = new Set([
  'AllAlpha',
  'AllBeta',
  ...`${KUBE_FEATURES} ${KUBE_FEATURES_1_35} ${KUBE_FEATURES_1_37} ${LIBRARY_FEATURES} ${PROXY_FEATURES}`.split(/\s+/).filter(Boolean),
]);

/**
 * The stage the newest release registers each honoured gate at (featuregate's PreRelease: "" is GA), and AllAlpha's
 * and AllBeta's. A DEPRECATED gate is switched by neither AllAlpha nor AllBeta.
 */
const STAGES: Readonly<Record<string, 'ALPHA' | 'BETA' | 'DEPRECATED' | ''>> = {
  AllAlpha: 'ALPHA',
  AllBeta: 'BETA',
  AllowServiceExternalIPs: 'DEPRECATED',
  PreferSameTrafficDistribution: '',
  MultiCIDRServiceAllocator: '',
  LoggingAlphaOptions: 'ALPHA',
  LoggingBetaOptions: 'BETA',
  ComponentFlagz: 'BETA',
  ComponentStatusz: 'BETA',
};

/**
 * Whether kube-proxy-ts runs with a gate it reads on, as featureGate.Enabled decides: the value set, else AllAlpha
 * for an alpha gate and AllBeta for a beta one when set, else the default.
 */
export function featureEnabled(gates: Readonly<Record<string, boolean>>, name: string): boolean {
  const set = gates[name];
  if (set !== undefined) return set;
  const stage = STAGES[name];
  const all = stage === 'ALPHA' ? gates['AllAlpha'] : stage === 'BETA' ? gates['AllBeta'] : undefined;
  return all ?? HONOURED_FEATURE_GATES[name] ?? false;
}

/**
 * What featureGate.AddMetrics records into kubernetes_feature_enabled, for the gates kube-proxy-ts reads (AllAlpha,
 * AllBeta and those it acts on), sorted by name. Upstream records every gate its registry holds; the others are not
 * here, since kube-proxy-ts neither knows their stage and default in the cluster's release nor acts on them.
 */
export function featureGateStates(gates: Readonly<Record<string, boolean>>): { name: string; stage: string; enabled: boolean }[] {
  return Object.keys(STAGES)
    .sort()
    .map((name) => ({ name, stage: STAGES[name]!, enabled: featureEnabled(gates, name) }));
}

/** The gate names upstream would refuse ("unrecognized feature gate"). */
export function unknownFeatureGates(gates: Readonly<Record<string, boolean>>): string[] {
  return Object.keys(gates).filter((name) => !KNOWN.has(name));
}

/** The known gates that are set but that kube-proxy-ts does not act on. */
export function inertFeatureGates(gates: Readonly<Record<string, boolean>>): string[] {
  return Object.keys(gates).filter((name) => KNOWN.has(name) && !(name in HONOURED_FEATURE_GATES));
}
