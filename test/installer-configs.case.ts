/**
 * Command lines and KubeProxyConfiguration files real installers give
 * kube-proxy, reconstructed from their sources (each names where it comes
 * from). Shared by test/installer-configs.test.ts; never runs alone.
 */

/**
 * k3s: kubeProxyArgs() in k3s-io/k3s pkg/daemons/agent/agent_linux.go (the
 * map rendered as sorted --key=value by config.GetArgsList). healthz-bind-address
 * is a bare IP: "127.0.0.1", or "::1" on an IPv6-only node.
 */
export const K3S_ARGS = [
  '--cluster-cidr=10.42.0.0/16',
  '--conntrack-max-per-core=0',
  '--conntrack-tcp-timeout-close-wait=0s',
  '--conntrack-tcp-timeout-established=0s',
  '--healthz-bind-address=127.0.0.1',
  '--hostname-override=k3s-agent-1',
  '--kubeconfig=/var/lib/rancher/k3s/agent/kubeproxy.kubeconfig',
  '--proxy-mode=iptables',
];

/**
 * Typhoon: the kube-proxy DaemonSet in poseidon/terraform-render-bootstrap
 * resources/manifests/kube-proxy.yaml (${pod_cidr} = Typhoon's default
 * 10.2.0.0/16). The stored revision selects --proxy-mode=ipvs; Typhoon's
 * default and this fixture use iptables (ipvs is refused, see the tests).
 */
export const TYPHOON_ARGS = [
  '--cluster-cidr=10.2.0.0/16',
  '--hostname-override=node1.example.com',
  '--kubeconfig=/etc/kubernetes/kubeconfig',
  '--metrics-bind-address=0.0.0.0',
  '--proxy-mode=iptables',
];

/**
 * kops: the static pod nodeup writes (kubernetes/kops nodeup/pkg/model/kube_proxy.go:
 * flagbuilder over the cluster's kubeProxy spec, plus --conntrack-max-per-core,
 * --kubeconfig and --oom-score-adj, sorted), as seen on a node's kube-proxy.manifest.
 */
export const KOPS_ARGS = [
  '--cluster-cidr=100.96.0.0/11',
  '--conntrack-max-per-core=131072',
  '--hostname-override=i-0e30debd74ba1ecdd',
  '--kubeconfig=/var/lib/kube-proxy/kubeconfig',
  '--master=https://127.0.0.1',
  '--oom-score-adj=-998',
  '--v=2',
];

/**
 * kube-up's GCE nodes: start-kube-proxy in kubernetes/kubernetes cluster/gce/gci/configure-helper.sh (`params` with
 * both modes' sync periods), as a node's kube-proxy.manifest shows it and the Windows node scripts quote it.
 */
export const GCE_ARGS = [
  '--master=https://35.239.84.171',
  '--kubeconfig=/var/lib/kube-proxy/kubeconfig',
  '--cluster-cidr=10.64.0.0/14',
  '--oom-score-adj=-998',
  '--v=2',
  '--iptables-sync-period=1m',
  '--iptables-min-sync-period=10s',
  '--ipvs-sync-period=1m',
  '--ipvs-min-sync-period=10s',
];

/**
 * kubeadm (v1.29+): the config.conf of the kube-proxy ConfigMap, which kubeadm
 * writes from its defaulted KubeProxyConfiguration (cmd/kubeadm/app/phases/addons/proxy),
 * every field present, zeros included; metricsBindAddress set to a bare
 * 0.0.0.0, the edit monitoring guides ask for.
 */
export const KUBEADM_CONFIG_CONF = `apiVersion: kubeproxy.config.k8s.io/v1alpha1
bindAddress: 0.0.0.0
bindAddressHardFail: false
clientConnection:
  acceptContentTypes: ""
  burst: 0
  contentType: ""
  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf
  qps: 0
clusterCIDR: 10.244.0.0/16
configSyncPeriod: 0s
conntrack:
  maxPerCore: null
  min: null
  tcpBeLiberal: false
  tcpCloseWaitTimeout: null
  tcpEstablishedTimeout: null
  udpStreamTimeout: 0s
  udpTimeout: 0s
detectLocal:
  bridgeInterface: ""
  interfaceNamePrefix: ""
detectLocalMode: ""
enableProfiling: false
healthzBindAddress: ""
hostnameOverride: ""
iptables:
  localhostNodePorts: null
  masqueradeAll: false
  masqueradeBit: null
  minSyncPeriod: 0s
  syncPeriod: 0s
ipvs:
  excludeCIDRs: null
  minSyncPeriod: 0s
  scheduler: ""
  strictARP: false
  syncPeriod: 0s
  tcpFinTimeout: 0s
  tcpTimeout: 0s
  udpTimeout: 0s
kind: KubeProxyConfiguration
logging:
  flushFrequency: 0
  options:
    json:
      infoBufferSize: "0"
    text:
      infoBufferSize: "0"
  verbosity: 0
metricsBindAddress: 0.0.0.0
mode: ""
nftables:
  masqueradeAll: false
  masqueradeBit: null
  minSyncPeriod: 0s
  syncPeriod: 0s
nodePortAddresses: null
oomScoreAdj: null
portRange: ""
showHiddenMetricsForVersion: ""
winkernel:
  enableDSR: false
  forwardHealthCheckVip: false
  networkName: ""
  rootHnsEndpointName: ""
  sourceVip: ""
`;

/**
 * kubeadm v1.13: the KubeProxyConfiguration of kubernetes/kubernetes
 * cmd/kubeadm/app/util/config/testdata/defaulting/controlplane/defaulted.yaml
 * (092f2210, kubernetesVersion v1.13.0), i.e. what kubeadm 1.12-1.15 wrote into
 * the ConfigMap: conntrack.max and resourceContainer were removed from
 * v1alpha1 later (1.16-1.19).
 */
export const KUBEADM_1_13_CONFIG = `apiVersion: kubeproxy.config.k8s.io/v1alpha1
bindAddress: 0.0.0.0
clientConnection:
  acceptContentTypes: ""
  burst: 10
  contentType: application/vnd.kubernetes.protobuf
  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf
  qps: 5
clusterCIDR: 10.148.0.0/16
configSyncPeriod: 15m0s
conntrack:
  max: null
  maxPerCore: 32768
  min: 131072
  tcpCloseWaitTimeout: 1h0m0s
  tcpEstablishedTimeout: 24h0m0s
enableProfiling: false
healthzBindAddress: 0.0.0.0:10256
hostnameOverride: ""
iptables:
  masqueradeAll: false
  masqueradeBit: 14
  minSyncPeriod: 0s
  syncPeriod: 30s
ipvs:
  excludeCIDRs: null
  minSyncPeriod: 0s
  scheduler: ""
  syncPeriod: 30s
kind: KubeProxyConfiguration
metricsBindAddress: 127.0.0.1:10249
mode: ""
nodePortAddresses: null
oomScoreAdj: -999
portRange: ""
resourceContainer: /kube-proxy
udpIdleTimeout: 250ms
winkernel:
  enableDSR: false
  networkName: ""
  sourceVip: ""
`;

/**
 * A hand-written file from a binary-install guide (avanda4ever/K8S-prometheus-studynote
 * kubernetes-conf/scripts/kube-proxy-config.sh, ${NODEADDRESS} = 192.168.1.21):
 * conntrack.max from an old version and ipvs.masqueradeAll, a key v1alpha1
 * never had under ipvs. Its mode is ipvs, which kube-proxy-ts refuses.
 */
export const GUIDE_IPVS_CONFIG = `apiVersion: kubeproxy.config.k8s.io/v1alpha1
bindAddress: 192.168.1.21
clientConnection:
  acceptContentTypes: ""
  burst: 10
  contentType: application/vnd.kubernetes.protobuf
  kubeconfig: /k8s/kubernetes/cfg/kube-proxy.kubeconfig
  qps: 5
clusterCIDR: 10.100.0.0/16
configSyncPeriod: 15m0s
conntrack:
  max: null
  maxPerCore: 32768
  min: 131072
  tcpCloseWaitTimeout: 1h0m0s
  tcpEstablishedTimeout: 24h0m0s
enableProfiling: false
healthzBindAddress: 0.0.0.0:10256
hostnameOverride: "192.168.1.21"
iptables:
  masqueradeAll: false
  masqueradeBit: 14
  minSyncPeriod: 0s
  syncPeriod: 30s
ipvs:
  masqueradeAll: true
  minSyncPeriod: 5s
  scheduler: "rr"
  syncPeriod: 30s
kind: KubeProxyConfiguration
metricsBindAddress: 127.0.0.1:10249
mode: "ipvs"
nodePortAddresses: null
oomScoreAdj: -999
portRange: ""
udpIdleTimeout: 250ms
`;

/**
 * kubeadm on an IPv6 control plane: kubeadm's kubeProxyDefaultBindAddress
 * (kubernetes/kubernetes cmd/kubeadm/app/componentconfigs/kubeproxy.go) sets
 * bindAddress to DefaultProxyBindAddressv6 "::" when the advertise address is
 * not IPv4; the rest of config.conf as KUBEADM_CONFIG_CONF above, with an IPv6
 * pod subnet and the server addresses left as kubeadm writes them: "".
 */
export const KUBEADM_IPV6_CONFIG_CONF = KUBEADM_CONFIG_CONF.replace('bindAddress: 0.0.0.0\n', "bindAddress: '::'\n")
  .replace('clusterCIDR: 10.244.0.0/16', 'clusterCIDR: fd00:10:244::/56')
  .replace('metricsBindAddress: 0.0.0.0', 'metricsBindAddress: ""');

/**
 * kind copies the cluster's featureGates into the KubeProxyConfiguration it
 * hands kubeadm (ConfigTemplateBetaV3 in kubernetes-sigs/kind
 * pkg/cluster/internal/kubeadm/config.go, with iptables.minSyncPeriod 1s and
 * conntrack.maxPerCore 0), and kubeadm writes them into config.conf. The gates
 * are those of the DRA demo cluster in sunya-ch/dra-example-driver
 * demo/consumablecapacity/kind-cluster-config.yaml (kindest/node v1.35):
 * DynamicResourceAllocation, DRAPrioritizedList, DRAPartitionableDevices,
 * DRAResourceClaimDeviceStatus, DRAConsumableCapacity.
 */
export const KIND_DRA_CONFIG_CONF = KUBEADM_CONFIG_CONF.replace(
  'enableProfiling: false\n',
  `enableProfiling: false
featureGates:
  DRAConsumableCapacity: true
  DRAPartitionableDevices: true
  DRAPrioritizedList: true
  DRAResourceClaimDeviceStatus: true
  DynamicResourceAllocation: true
`,
)
  .replace('maxPerCore: null', 'maxPerCore: 0')
  .replace('minSyncPeriod: 0s', 'minSyncPeriod: 1s')
  .replace('mode: ""', 'mode: iptables');
