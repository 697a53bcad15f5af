/**
 * The effective configuration of kube-proxy-ts: upstream's defaults, then the
 * KubeProxyConfiguration file (when --config is given), then the flags given
 * on the command line. Validation names the flag or field that is wrong.
 */
import { isDeepStrictEqual } from 'node:util';
import type { DetectLocalMode } from '../iptables/local-detector.ts';
import { validateConfig } from './config-validate.ts';
import { inertFeatureGates } from './feature-gates.ts';
import { AGENT_FLAGS } from './flag-table.ts';
import { flagDefault, type FlagValue } from './flags.ts';
import { appendPortIfNeeded, HEALTHZ_PORT, METRICS_PORT } from './host-port.ts';

export { parseHostPort } from './host-port.ts';

export type ProxyMode = 'iptables' | 'userspace';

export interface ProxyConfig {
  readonly mode: ProxyMode;
  readonly kubeconfig: string;
  readonly master: string;
  readonly objects: string;
  readonly iptablesBackend: 'auto' | 'nft' | 'legacy';
  readonly hostnameOverride: string;
  readonly bindAddress: string;
  readonly clusterCIDRs: readonly string[];
  readonly detectLocalMode: DetectLocalMode;
  readonly bridgeInterface: string;
  readonly interfaceNamePrefix: string;
  readonly masqueradeAll: boolean;
  readonly masqueradeBit: number;
  readonly localhostNodePorts: boolean;
  readonly nodePortAddresses: readonly string[];
  readonly syncPeriodMs: number;
  readonly minSyncPeriodMs: number;
  readonly healthzBindAddress: string;
  readonly metricsBindAddress: string;
  readonly bindAddressHardFail: boolean;
  readonly portRange: string;
  readonly udpIdleTimeoutMs: number;
  readonly configSyncPeriodMs: number;
  readonly conntrackTCPBeLiberal: boolean;
  readonly featureGates: Readonly<Record<string, boolean>>;
  /** Accepted for compatibility only (validated as upstream validates them). */
  readonly showHiddenMetricsForVersion: string;
  readonly conntrackTimeoutsMs: Readonly<Record<'conntrack-tcp-timeout-established' | 'conntrack-tcp-timeout-close-wait' | 'conntrack-udp-timeout' | 'conntrack-udp-timeout-stream', number>>;
  readonly verbosity: number;
  readonly cleanup: boolean;
  /** Flags that were set but are accepted only for compatibility. */
  readonly notImplemented: readonly string[];
}

/** Builds the effective configuration from flag values given on the command line (defaults for the rest). */
export function configFromFlags(given: ReadonlyMap<string, FlagValue>): ProxyConfig {
  const get = (name: string): FlagValue => {
    const v = given.get(name);
    if (v !== undefined) return v;
    const spec = AGENT_FLAGS.find((s) => s.name === name);
    if (!spec) throw new Error(`no flag named ${name}`);
    return flagDefault(spec);
  };
  const str = (n: string): string => get(n) as string;
  const mode = (str('mode') || str('proxy-mode') || 'iptables') as ProxyMode;
  const config: ProxyConfig = {
    mode,
    kubeconfig: str('kubeconfig'),
    master: str('master'),
    objects: str('objects'),
    iptablesBackend: str('iptables-backend') as ProxyConfig['iptablesBackend'],
    hostnameOverride: str('hostname-override'),
    bindAddress: str('bind-address'),
    clusterCIDRs: str('cluster-cidr').split(',').map((s) => s.trim()).filter(Boolean),
    detectLocalMode: (str('detect-local-mode') || 'ClusterCIDR') as DetectLocalMode,
    bridgeInterface: str('pod-bridge-interface'),
    interfaceNamePrefix: str('pod-interface-name-prefix'),
    masqueradeAll: get('masquerade-all') as boolean,
    masqueradeBit: get('iptables-masquerade-bit') as number,
    localhostNodePorts: get('iptables-localhost-nodeports') as boolean,
    nodePortAddresses: get('nodeport-addresses') as string[],
    syncPeriodMs: get('iptables-sync-period') as number,
    minSyncPeriodMs: get('iptables-min-sync-period') as number,
    // A bare IP gets the default port, as upstream's AppendPortIfNeeded (k3s passes --healthz-bind-address=127.0.0.1).
    healthzBindAddress: appendPortIfNeeded(str('healthz-bind-address').trim(), HEALTHZ_PORT),
    metricsBindAddress: appendPortIfNeeded(str('metrics-bind-address').trim(), METRICS_PORT),
    bindAddressHardFail: get('bind-address-hard-fail') as boolean,
    portRange: str('proxy-port-range'),
    udpIdleTimeoutMs: get('udp-timeout') as number,
    configSyncPeriodMs: get('config-sync-period') as number,
    conntrackTCPBeLiberal: get('conntrack-tcp-be-liberal') as boolean,
    featureGates: get('feature-gates') as Record<string, boolean>,
    showHiddenMetricsForVersion: str('show-hidden-metrics-for-version'),
    conntrackTimeoutsMs: {
      'conntrack-tcp-timeout-established': get('conntrack-tcp-timeout-established') as number,
      'conntrack-tcp-timeout-close-wait': get('conntrack-tcp-timeout-close-wait') as number,
      'conntrack-udp-timeout': get('conntrack-udp-timeout') as number,
      'conntrack-udp-timeout-stream': get('conntrack-udp-timeout-stream') as number,
    },
    verbosity: get('v') as number,
    cleanup: get('cleanup') as boolean,
    notImplemented: [
      ...AGENT_FLAGS.filter((s) => s.notImplemented && given.has(s.name) && !isDeepStrictEqual(given.get(s.name), flagDefault(s))).map((s) => `--${s.name}: ${s.notImplemented}`),
      ...inertFeatureGates(get('feature-gates') as Record<string, boolean>).map((g) => `--feature-gates ${g}: a gate kube-proxy-ts does not act on`),
    ],
  };
  validateConfig(config);
  return config;
}
