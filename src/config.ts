/**
 * The effective configuration of kube-proxy-ts: upstream's defaults, then the
 * KubeProxyConfiguration file (when --config is given), then the flags given
 * on the command line. Validation names the flag or field that is wrong.
 */
import { isDeepStrictEqual } from 'node:util';
import { parseCIDR, parseIP } from '../proxier/ip.ts';
import type { DetectLocalMode } from '../iptables/local-detector.ts';
import { parsePortRange } from '../userspace/port-allocator.ts';
import { AGENT_FLAGS } from './flag-table.ts';
import { FlagError, flagDefault, type FlagValue } from './flags.ts';

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
    healthzBindAddress: str('healthz-bind-address'),
    metricsBindAddress: str('metrics-bind-address'),
    bindAddressHardFail: get('bind-address-hard-fail') as boolean,
    portRange: str('proxy-port-range'),
    udpIdleTimeoutMs: get('udp-timeout') as number,
    configSyncPeriodMs: get('config-sync-period') as number,
    conntrackTCPBeLiberal: get('conntrack-tcp-be-liberal') as boolean,
    featureGates: get('feature-gates') as Record<string, boolean>,
    verbosity: get('v') as number,
    cleanup: get('cleanup') as boolean,
    notImplemented: AGENT_FLAGS.filter((s) => s.notImplemented && given.has(s.name) && !isDeepStrictEqual(given.get(s.name), flagDefault(s))).map(
      (s) => `--${s.name}: ${s.notImplemented}`,
    ),
  };
  validateConfig(config);
  return config;
}

/** Cross-field validation; throws FlagError naming the flag. */
export function validateConfig(c: ProxyConfig): void {
  for (const cidr of c.clusterCIDRs) {
    if (!parseCIDR(cidr)) throw new FlagError('cluster-cidr', `invalid --cluster-cidr "${cidr}": not a CIDR`);
  }
  const families = new Set(c.clusterCIDRs.map((x) => parseCIDR(x)!.family));
  if (c.clusterCIDRs.length > 2 || (c.clusterCIDRs.length === 2 && families.size !== 2)) {
    throw new FlagError('cluster-cidr', `invalid --cluster-cidr "${c.clusterCIDRs.join(',')}": at most one CIDR per IP family`);
  }
  for (const a of c.nodePortAddresses) {
    if (a !== 'primary' && !parseCIDR(a)) throw new FlagError('nodeport-addresses', `invalid --nodeport-addresses entry "${a}": not a CIDR or "primary"`);
  }
  if (c.nodePortAddresses.includes('primary') && c.nodePortAddresses.length > 1) {
    throw new FlagError('nodeport-addresses', '--nodeport-addresses "primary" cannot be combined with CIDRs');
  }
  if (!parseIP(c.bindAddress)) throw new FlagError('bind-address', `invalid --bind-address "${c.bindAddress}": not an IP address`);
  for (const [flag, value] of [['healthz-bind-address', c.healthzBindAddress], ['metrics-bind-address', c.metricsBindAddress]] as const) {
    if (value !== '' && !parseHostPort(value)) throw new FlagError(flag, `invalid --${flag} "${value}": expected ip:port`);
  }
  if (c.minSyncPeriodMs > c.syncPeriodMs) {
    throw new FlagError('iptables-min-sync-period', `--iptables-min-sync-period (${c.minSyncPeriodMs}ms) must not exceed --iptables-sync-period (${c.syncPeriodMs}ms)`);
  }
  if (c.syncPeriodMs <= 0) throw new FlagError('iptables-sync-period', '--iptables-sync-period must be greater than 0');
  if (c.udpIdleTimeoutMs <= 0) throw new FlagError('udp-timeout', '--udp-timeout must be greater than 0');
  try {
    parsePortRange(c.portRange);
  } catch (err) {
    throw new FlagError('proxy-port-range', (err as Error).message);
  }
}

/** "ip:port" or "[ipv6]:port" -> parts, or null. */
export function parseHostPort(text: string): { host: string; port: number } | null {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text);
  if (!m) return null;
  const host = m[1] ?? m[2] ?? '';
  const port = Number(m[3]);
  if (port > 65535 || (host !== '' && !parseIP(host))) return null;
  return { host: host === '' ? '0.0.0.0' : host, port };
}
