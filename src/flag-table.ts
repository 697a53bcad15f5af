/**
 * The flag table: upstream kube-proxy's flags for the iptables, nftables and
 * userspace modes (same names, meanings and defaults), plus kube-proxy-ts's own
 * (`--objects`, and the subcommands' options). Flags upstream has that
 * kube-proxy-ts accepts but does not act on are marked notImplemented, so a
 * DaemonSet written for upstream still starts. The nftables mode's `nftables:`
 * config section has no flags upstream, so its entries are fileOnly.
 */
import type { FlagSpec } from './flags.ts';
import { DETECT_LOCAL_MODES } from '../iptables/local-detector.ts';

export const AGENT_FLAGS: readonly FlagSpec[] = [
  {
    name: 'mode',
    type: 'string',
    default: '',
    config: 'mode',
    values: ['', 'iptables', 'userspace', 'nftables'],
    help: 'Which proxy mode to use: iptables (default), userspace or nftables.',
  },
  {
    name: 'proxy-mode',
    type: 'string',
    default: '',
    config: 'mode',
    values: ['', 'iptables', 'userspace', 'nftables'],
    help: 'Alias of --mode, as upstream.',
  },
  {
    name: 'config',
    type: 'string',
    default: '',
    help: 'Path to a KubeProxyConfiguration file (kubeproxy.config.k8s.io/v1alpha1). Flags given on the command line override it.',
  },
  { name: 'write-config-to', type: 'string', default: '', help: 'Write the effective configuration to this file and exit.' },
  {
    name: 'kubeconfig',
    type: 'string',
    default: '',
    config: 'clientConnection.kubeconfig',
    help: 'Path to a kubeconfig file with authorization information.',
  },
  { name: 'master', type: 'string', default: '', help: 'Address of the Kubernetes API server (overrides the kubeconfig).' },
  {
    name: 'objects',
    type: 'string',
    default: '',
    help: 'Read Services, EndpointSlices and Nodes from this manifest file or directory (watched) instead of an API server.',
  },
  {
    name: 'iptables-backend',
    type: 'string',
    default: 'auto',
    values: ['auto', 'nft', 'legacy'],
    help: "iptables backend: auto picks the one the node already uses (as upstream's iptables-wrapper), or force nft or legacy.",
  },
  {
    name: 'traffic-counters',
    type: 'bool',
    default: 'false',
    help: 'iptables mode: export packets and bytes per service endpoint (kubeproxy_ts_endpoint_*_total) from the KUBE-SEP rule counters, read at full syncs and every --traffic-counters-period.',
  },
  {
    name: 'traffic-counters-period',
    type: 'duration',
    default: '1m0s',
    help: 'With --traffic-counters: how often the counters are read besides full syncs (iptables-save -c -t nat).',
  },
  {
    name: 'traffic-counters-max-endpoints',
    type: 'int',
    default: '1000',
    min: 1,
    help: 'With --traffic-counters: most (service, endpoint) pairs exported; the rest are left out with a warning.',
  },
  {
    name: 'hostname-override',
    type: 'string',
    default: '',
    config: 'hostnameOverride',
    help: 'The name of this node, used to find its Node object and its local endpoints. Default: the hostname.',
  },
  {
    name: 'bind-address',
    type: 'string',
    default: '0.0.0.0',
    config: 'bindAddress',
    help: 'Overrides the primary node IP family choice (0.0.0.0 for IPv4, :: for IPv6).',
  },
  {
    name: 'bind-address-hard-fail',
    type: 'bool',
    default: 'false',
    config: 'bindAddressHardFail',
    help: 'Exit when binding the health or metrics server fails.',
  },
  {
    name: 'cluster-cidr',
    type: 'string',
    default: '',
    config: 'clusterCIDR',
    help: 'The CIDR range(s) of pods in the cluster (comma-separated, one per family) for local-traffic detection.',
  },
  {
    name: 'detect-local-mode',
    type: 'string',
    default: '',
    config: 'detectLocalMode',
    values: ['', ...DETECT_LOCAL_MODES],
    help: 'How local traffic is detected: ClusterCIDR (default), NodeCIDR, BridgeInterface or InterfaceNamePrefix.',
  },
  {
    name: 'pod-bridge-interface',
    type: 'string',
    default: '',
    config: 'detectLocal.bridgeInterface',
    help: 'Bridge interface name for --detect-local-mode=BridgeInterface.',
  },
  {
    name: 'pod-interface-name-prefix',
    type: 'string',
    default: '',
    config: 'detectLocal.interfaceNamePrefix',
    help: 'Interface name prefix for --detect-local-mode=InterfaceNamePrefix.',
  },
  {
    name: 'masquerade-all',
    type: 'bool',
    default: 'false',
    config: 'iptables.masqueradeAll',
    help: 'SNAT all traffic sent via Service cluster IPs.',
  },
  {
    name: 'nodeport-addresses',
    type: 'stringList',
    default: '',
    config: 'nodePortAddresses',
    help: 'CIDRs (or "primary") of the node addresses that accept NodePort traffic. Default: all local addresses.',
  },
  {
    name: 'iptables-sync-period',
    type: 'duration',
    default: '30s',
    config: 'iptables.syncPeriod',
    help: "How often rules are checked and refreshed (canary check, retry after failure); also the nftables mode's.",
  },
  {
    name: 'iptables-min-sync-period',
    type: 'duration',
    default: '1s',
    config: 'iptables.minSyncPeriod',
    help: 'Minimum time between two syncs; 0 syncs on every change (all modes).',
  },
  {
    name: 'iptables-masquerade-bit',
    type: 'int',
    default: '14',
    min: 0,
    max: 31,
    config: 'iptables.masqueradeBit',
    help: 'Bit of the fwmark space that marks packets needing SNAT (iptables and userspace modes; nftables mode: nftables.masqueradeBit).',
  },
  {
    name: 'iptables-localhost-nodeports',
    type: 'bool',
    default: 'true',
    config: 'iptables.localhostNodePorts',
    help: 'Allow NodePorts on 127.0.0.1 (IPv4 only; sets route_localnet).',
  },
  // The `nftables:` section: upstream reads it instead of `iptables:` when the file says mode: nftables
  // (v1alpha1 conversion), and has no flags of its own for it (its flags map as in the iptables mode).
  { name: 'nftables-masquerade-all', type: 'bool', default: 'false', config: 'nftables.masqueradeAll', fileOnly: true, help: '' },
  { name: 'nftables-masquerade-bit', type: 'int', default: '14', min: 0, max: 31, config: 'nftables.masqueradeBit', fileOnly: true, help: '' },
  { name: 'nftables-sync-period', type: 'duration', default: '30s', config: 'nftables.syncPeriod', fileOnly: true, help: '' },
  { name: 'nftables-min-sync-period', type: 'duration', default: '1s', config: 'nftables.minSyncPeriod', fileOnly: true, help: '' },
  {
    name: 'healthz-bind-address',
    type: 'string',
    default: '0.0.0.0:10256',
    config: 'healthzBindAddress',
    help: 'ip:port of the health check server (/healthz, /livez); a bare IP gets port 10256; empty disables it.',
  },
  {
    name: 'metrics-bind-address',
    type: 'string',
    default: '127.0.0.1:10249',
    config: 'metricsBindAddress',
    help: 'ip:port of the metrics server (/metrics); a bare IP gets port 10249; empty disables it.',
  },
  {
    name: 'proxy-port-range',
    type: 'string',
    default: '',
    config: 'portRange',
    help: 'Userspace mode: host port range (begin-end, begin+offset or single port) for listeners; empty = random free ports.',
  },
  {
    name: 'udp-timeout',
    type: 'duration',
    default: '250ms',
    config: 'udpIdleTimeout',
    help: 'Userspace mode: how long an idle UDP session is kept.',
  },
  {
    name: 'config-sync-period',
    type: 'duration',
    default: '15m0s',
    config: 'configSyncPeriod',
    notImplemented: 'informers do not resync (client-node has no resync); the periodic full sync repairs drift',
    help: 'How often configuration from the API server is refreshed (informer resync).',
  },
  { name: 'cleanup', type: 'bool', default: 'false', help: 'Remove every rule kube-proxy (either mode, and upstream) installed, then exit.' },
  { name: 'init-only', type: 'bool', default: 'false', help: 'Do the privileged setup (sysctls) and exit.' },
  {
    name: 'v',
    shorthand: 'v',
    type: 'int',
    default: '0',
    min: 0,
    max: 10,
    config: 'logging.verbosity',
    help: 'Log verbosity: 0-1 info, 2-3 debug, 4+ trace.',
  },
  {
    name: 'feature-gates',
    type: 'mapStringBool',
    default: '',
    config: 'featureGates',
    help: 'key=true|false pairs (PreferSameTrafficDistribution is honoured).',
  },
  {
    name: 'kube-api-content-type',
    type: 'string',
    default: 'application/vnd.kubernetes.protobuf',
    config: 'clientConnection.contentType',
    help: 'Content type of requests to the API server.',
    notImplemented: 'JSON is always used',
  },
  {
    name: 'kube-api-qps',
    type: 'float',
    default: '5',
    config: 'clientConnection.qps',
    help: 'QPS to use while talking with the API server.',
    notImplemented: 'only watches are used',
  },
  {
    name: 'kube-api-burst',
    type: 'int',
    default: '10',
    min: 0,
    config: 'clientConnection.burst',
    help: 'Burst to use while talking with the API server.',
    notImplemented: 'only watches are used',
  },
  {
    name: 'oom-score-adj',
    type: 'int',
    default: '-999',
    min: -1000,
    max: 1000,
    config: 'oomScoreAdj',
    help: 'oom_score_adj value for the process.',
  },
  {
    name: 'conntrack-max-per-core',
    type: 'int',
    default: '32768',
    min: 0,
    config: 'conntrack.maxPerCore',
    help: 'Maximum NAT connections to track per CPU core.',
  },
  {
    name: 'conntrack-min',
    type: 'int',
    default: '131072',
    min: 0,
    config: 'conntrack.min',
    help: 'Minimum number of conntrack entries to allocate.',
  },
  {
    name: 'conntrack-tcp-timeout-established',
    type: 'duration',
    default: '24h0m0s',
    config: 'conntrack.tcpEstablishedTimeout',
    help: 'Idle timeout for established TCP connections.',
  },
  {
    name: 'conntrack-tcp-timeout-close-wait',
    type: 'duration',
    default: '1h0m0s',
    config: 'conntrack.tcpCloseWaitTimeout',
    help: 'NAT timeout for TCP connections in CLOSE_WAIT.',
  },
  {
    name: 'conntrack-tcp-be-liberal',
    type: 'bool',
    default: 'false',
    config: 'conntrack.tcpBeLiberal',
    help: 'Treat out-of-window TCP packets as valid (also removes the INVALID drop rule).',
  },
  {
    name: 'conntrack-udp-timeout',
    type: 'duration',
    default: '0s',
    config: 'conntrack.udpTimeout',
    help: 'Idle timeout for UNREPLIED UDP connections.',
  },
  {
    name: 'conntrack-udp-timeout-stream',
    type: 'duration',
    default: '0s',
    config: 'conntrack.udpStreamTimeout',
    help: 'Idle timeout for ASSURED UDP connections.',
  },
  {
    name: 'profiling',
    type: 'bool',
    default: 'false',
    config: 'enableProfiling',
    help: 'Enable profiling via the web interface.',
    notImplemented: 'no pprof in Node.js',
  },
  {
    name: 'show-hidden-metrics-for-version',
    type: 'string',
    default: '',
    config: 'showHiddenMetricsForVersion',
    help: 'Show metrics hidden in that version.',
    notImplemented: 'no hidden metrics',
  },
];

/** Extra options of the `render` and `diff` subcommands. */
export const RENDER_FLAGS: readonly FlagSpec[] = [
  {
    name: 'ip-family',
    type: 'string',
    default: '',
    values: ['', 'IPv4', 'IPv6'],
    help: "Print only this family's ruleset (default: IPv4, then IPv6 when there is one).",
  },
  {
    name: 'iptables-random-fully',
    type: 'bool',
    default: 'true',
    help: 'Render MASQUERADE with --random-fully (the agent detects iptables >= 1.6.2 itself).',
  },
  {
    name: 'no-jumps',
    type: 'bool',
    default: 'false',
    help: 'Leave out the jump rules from the built-in chains (the agent manages them separately).',
  },
];

/** `kube-proxy-ts top` adds these (src/cmd/top.ts). */
export const TOP_FLAGS: readonly FlagSpec[] = [
  { name: 'interval', type: 'duration', default: '2s', help: 'top: time between two readings of the counters' },
  { name: 'iterations', type: 'int', default: '0', min: 0, help: 'top: stop after this many frames (0: until interrupted)' },
  {
    name: 'ip-family',
    type: 'string',
    default: '',
    values: ['', 'IPv4', 'IPv6'],
    help: 'top: the family whose counters are read (default: IPv4 when the node has it, else IPv6)',
  },
];

export function findFlag(specs: readonly FlagSpec[], name: string): FlagSpec {
  const spec = specs.find((s) => s.name === name);
  if (!spec) throw new Error(`no flag named ${name}`);
  return spec;
}
