/**
 * What upstream's validation.Validate (pkg/proxy/apis/config/validation)
 * refuses, refused here too, each error naming the flag (load-config adds the
 * config field when the value came from the file). Range checks of single
 * numbers live in the flag table (min/max), so they apply to the flags and to
 * the file alike.
 */
import { parseCIDR, parseIP } from '../proxier/ip.ts';
import { parsePortRange } from '../userspace/port-allocator.ts';
import type { ProxyConfig } from './config.ts';
import { unknownFeatureGates } from './feature-gates.ts';
import { FlagError } from './flags.ts';
import { parseHostPort } from './host-port.ts';

/** Cross-field validation; throws FlagError naming the flag. */
export function validateConfig(c: ProxyConfig): void {
  const unknown = unknownFeatureGates(c.featureGates);
  if (unknown.length) throw new FlagError('feature-gates', `invalid --feature-gates: unrecognized feature gate${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}`);
  validateCIDRs(c);
  if (!parseIP(c.bindAddress)) throw new FlagError('bind-address', `invalid --bind-address "${c.bindAddress}": not an IP address`);
  for (const [flag, value] of [['healthz-bind-address', c.healthzBindAddress], ['metrics-bind-address', c.metricsBindAddress]] as const) {
    if (value !== '' && !parseHostPort(value)) throw new FlagError(flag, `invalid --${flag} "${value}": expected ip or ip:port`);
  }
  validateDurations(c);
  validateDetectLocal(c);
  // Upstream accepts only the previous minor of its own version; kube-proxy-ts serves several, so any "<major>.<minor>".
  if (c.showHiddenMetricsForVersion !== '' && !/^\d+\.\d+$/.test(c.showHiddenMetricsForVersion)) {
    throw new FlagError('show-hidden-metrics-for-version', `invalid --show-hidden-metrics-for-version "${c.showHiddenMetricsForVersion}": must be omitted or a version <major>.<minor> such as 1.33`);
  }
  try {
    parsePortRange(c.portRange);
  } catch (err) {
    throw new FlagError('proxy-port-range', (err as Error).message);
  }
}

function validateCIDRs(c: ProxyConfig): void {
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
}

function validateDurations(c: ProxyConfig): void {
  if (c.syncPeriodMs <= 0) throw new FlagError('iptables-sync-period', '--iptables-sync-period must be greater than 0');
  if (c.minSyncPeriodMs < 0) throw new FlagError('iptables-min-sync-period', '--iptables-min-sync-period must be greater than or equal to 0');
  if (c.minSyncPeriodMs > c.syncPeriodMs) {
    throw new FlagError('iptables-min-sync-period', `--iptables-min-sync-period (${c.minSyncPeriodMs}ms) must not exceed --iptables-sync-period (${c.syncPeriodMs}ms)`);
  }
  // Durations are whole nanoseconds, as Go's: --udp-timeout=0.5ns is 0 and refused.
  if (c.udpIdleTimeoutMs <= 0) throw new FlagError('udp-timeout', '--udp-timeout must be greater than 0');
  if (c.configSyncPeriodMs <= 0) throw new FlagError('config-sync-period', '--config-sync-period must be greater than 0');
  for (const [flag, ms] of Object.entries(c.conntrackTimeoutsMs)) {
    if (ms < 0) throw new FlagError(flag, `--${flag} must be greater than or equal to 0`);
  }
}

/** validateDetectLocalConfiguration: the interface modes need their interface. */
function validateDetectLocal(c: ProxyConfig): void {
  if (c.detectLocalMode === 'BridgeInterface' && c.bridgeInterface === '') {
    throw new FlagError('pod-bridge-interface', '--detect-local-mode=BridgeInterface needs --pod-bridge-interface (detectLocal.bridgeInterface): must not be empty');
  }
  if (c.detectLocalMode === 'InterfaceNamePrefix' && c.interfaceNamePrefix === '') {
    throw new FlagError('pod-interface-name-prefix', '--detect-local-mode=InterfaceNamePrefix needs --pod-interface-name-prefix (detectLocal.interfaceNamePrefix): must not be empty');
  }
}
