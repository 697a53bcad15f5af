/**
 * The effective configuration of kube-proxy-ts: upstream's defaults, then the
 * KubeProxyConfiguration file (when --config is given), then the flags given
 * on the command line. Validation refuses what upstream's validation.Validate
 * (pkg/proxy/apis/config/validation) refuses, each error naming the flag
 * (load-config adds the config field when the value came from the file).
 * Range checks of single numbers live in the flag table (min/max), so they
 * apply to the flags and to the file alike.
 */
import { isDeepStrictEqual } from 'node:util';
import type { DetectLocalMode } from '../iptables/local-detector.ts';
import { parseCIDR, parseIP } from '../proxier/ip.ts';
import { NODE_PORT_KEYWORDS } from '../proxier/node-ports.ts';
import type { ProxyModeName } from '../proxier/mode.ts';
import { parsePortRange } from '../userspace/port-allocator.ts';
import { featureEnabled, inertFeatureGates, unknownFeatureGates } from './feature-gates.ts';
import { AGENT_FLAGS } from './flag-table.ts';
import { flagDefault, FlagError, settingLabel, type FlagValue } from './flags.ts';
import { appendPortIfNeeded, parseHostPort } from './host-port.ts';

export interface ProxyConfig {
  readonly mode: ProxyModeName;
  readonly kubeconfig: string;
  readonly master: string;
  readonly objects: string;
  readonly iptablesBackend: 'auto' | 'nft' | 'legacy';
  /** --traffic-counters and its period and cap (kube-proxy-ts only). */
  readonly trafficCounters: boolean;
  readonly trafficCountersPeriodMs: number;
  readonly trafficCountersMaxEndpoints: number;
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
  /** nf_conntrack_max = max(maxPerCore × CPUs, min), raised at start; maxPerCore 0 leaves it (src/conntrack-sysctls.ts). */
  readonly conntrackMaxPerCore: number;
  readonly conntrackMin: number;
  /** The agent's own oom_score_adj (upstream ApplyOOMScoreAdj). */
  readonly oomScoreAdj: number;
  readonly featureGates: Readonly<Record<string, boolean>>;
  /** Accepted for compatibility only (validated as upstream validates them). */
  readonly showHiddenMetricsForVersion: string;
  readonly conntrackTimeoutsMs: Readonly<
    Record<
      'conntrack-tcp-timeout-established' | 'conntrack-tcp-timeout-close-wait' | 'conntrack-udp-timeout' | 'conntrack-udp-timeout-stream',
      number
    >
  >;
  readonly verbosity: number;
  /** --logging-format: klog text lines (upstream's default) or JSON lines. */
  readonly loggingFormat: 'text' | 'json';
  /** --log-text-split-stream or --log-json-split-stream, the one of the format in use: errors to stderr, the rest to stdout. */
  readonly logSplitStream: boolean;
  /** --vmodule (and logging.vmodule), checked as klog checks it: per-file verbosity (src/log.ts parseVModule). */
  readonly vmodule: string;
  /** --log-text-info-buffer-size or --log-json-info-buffer-size, the one of the format in use, in bytes (0: none). */
  readonly logInfoBufferSize: number;
  /** --log-flush-frequency: how often buffered info lines are written. */
  readonly logFlushFrequencyMs: number;
  /** --profiling (enableProfiling): upstream's /debug/pprof and /debug/flags (v, and its index); here the latter only. */
  readonly profiling: boolean;
  readonly cleanup: boolean;
  /** --init-only: the privileged node setup (sysctls), then exit. */
  readonly initOnly: boolean;
  /** Upstream's deprecation notices of the deprecated flags that were set (pflag prints them). */
  readonly deprecated: readonly string[];
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
  const deprecatedPort = (n: 'healthz-port' | 'metrics-port'): number =>
    (given.has('write-config-to') ? flagDefault(AGENT_FLAGS.find((s) => s.name === n)!) : get(n)) as number;
  const mode = (str('mode') || str('proxy-mode') || 'iptables') as ProxyModeName;
  const names = settingNames(mode, given);
  const nodePortAddresses = get('nodeport-addresses') as string[];
  const config: ProxyConfig = {
    mode,
    kubeconfig: str('kubeconfig'),
    master: str('master'),
    objects: str('objects'),
    iptablesBackend: str('iptables-backend') as ProxyConfig['iptablesBackend'],
    trafficCounters: get('traffic-counters') as boolean,
    trafficCountersPeriodMs: get('traffic-counters-period') as number,
    trafficCountersMaxEndpoints: get('traffic-counters-max-endpoints') as number,
    hostnameOverride: str('hostname-override'),
    bindAddress: str('bind-address'),
    clusterCIDRs: str('cluster-cidr')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    detectLocalMode: (str('detect-local-mode') || 'ClusterCIDR') as DetectLocalMode,
    bridgeInterface: str('pod-bridge-interface'),
    interfaceNamePrefix: str('pod-interface-name-prefix'),
    masqueradeAll: get(names.masqueradeAll) as boolean,
    masqueradeBit: get(names.masqueradeBit) as number,
    localhostNodePorts: get('iptables-localhost-nodeports') as boolean,
    // platformApplyDefaults: the nftables mode's NodePorts answer on the node's primary IPs unless told otherwise.
    nodePortAddresses: mode === 'nftables' && nodePortAddresses.length === 0 ? ['primary'] : nodePortAddresses,
    syncPeriodMs: get(names.syncPeriod) as number,
    minSyncPeriodMs: get(names.minSyncPeriod) as number,
    // A bare IP gets the port of the deprecated --healthz-port / --metrics-port (10256 / 10249 by default), and port 0
    // disables the server, as upstream's addressFromDeprecatedFlags (k3s passes --healthz-bind-address=127.0.0.1).
    // Not for --write-config-to, as upstream's Complete (the file written keeps the addresses).
    healthzBindAddress: addressFromDeprecatedFlags(str('healthz-bind-address'), deprecatedPort('healthz-port')),
    metricsBindAddress: addressFromDeprecatedFlags(str('metrics-bind-address'), deprecatedPort('metrics-port')),
    bindAddressHardFail: get('bind-address-hard-fail') as boolean,
    portRange: str('proxy-port-range'),
    udpIdleTimeoutMs: get('udp-timeout') as number,
    configSyncPeriodMs: get('config-sync-period') as number,
    conntrackTCPBeLiberal: get('conntrack-tcp-be-liberal') as boolean,
    conntrackMaxPerCore: get('conntrack-max-per-core') as number,
    conntrackMin: get('conntrack-min') as number,
    oomScoreAdj: get('oom-score-adj') as number,
    featureGates: get('feature-gates') as Record<string, boolean>,
    showHiddenMetricsForVersion: str('show-hidden-metrics-for-version'),
    conntrackTimeoutsMs: {
      'conntrack-tcp-timeout-established': get('conntrack-tcp-timeout-established') as number,
      'conntrack-tcp-timeout-close-wait': get('conntrack-tcp-timeout-close-wait') as number,
      'conntrack-udp-timeout': get('conntrack-udp-timeout') as number,
      'conntrack-udp-timeout-stream': get('conntrack-udp-timeout-stream') as number,
    },
    verbosity: get('v') as number,
    loggingFormat: str('logging-format') === 'json' ? 'json' : 'text',
    vmodule: str('vmodule'),
    logSplitStream: get(str('logging-format') === 'json' ? 'log-json-split-stream' : 'log-text-split-stream') as boolean,
    logInfoBufferSize: quantityBytes(String(get(str('logging-format') === 'json' ? 'log-json-info-buffer-size' : 'log-text-info-buffer-size'))) ?? 0,
    logFlushFrequencyMs: get('log-flush-frequency') as number,
    profiling: get('profiling') as boolean,
    cleanup: get('cleanup') as boolean,
    initOnly: get('init-only') as boolean,
    deprecated: AGENT_FLAGS.filter((s) => s.deprecated && given.has(s.name)).map((s) => `Flag --${s.name} has been deprecated, ${s.deprecated}`),
    notImplemented: [
      ...AGENT_FLAGS.filter((s) => s.notImplemented && given.has(s.name) && !isDeepStrictEqual(given.get(s.name), flagDefault(s))).map(
        (s) => `--${s.name}: ${s.notImplemented}`,
      ),
      ...inertFeatureGates(get('feature-gates') as Record<string, boolean>).map((g) => `--feature-gates ${g}: a gate kube-proxy-ts does not act on`),
      ...(mode === 'nftables' && given.has('iptables-masquerade-bit') && get('iptables-masquerade-bit') !== get('nftables-masquerade-bit')
        ? [
            '--iptables-masquerade-bit: not used in nftables mode, as upstream (that mode marks with nftables.masqueradeBit of a --config file, 14 by default)',
          ]
        : []),
    ],
  };
  validateConfig(config, names);
  validateLoggingOptions(config, get);
  return config;
}

function addressFromDeprecatedFlags(address: string, port: number): string {
  return port === 0 ? '' : appendPortIfNeeded(address.trim(), port);
}

/** Which flag (or file-only config field) each mode-dependent setting comes from. */
export interface SettingNames {
  readonly syncPeriod: string;
  readonly minSyncPeriod: string;
  readonly masqueradeAll: string;
  readonly masqueradeBit: string;
}

const IPTABLES_SETTINGS: SettingNames = {
  syncPeriod: 'iptables-sync-period',
  minSyncPeriod: 'iptables-min-sync-period',
  masqueradeAll: 'masquerade-all',
  masqueradeBit: 'iptables-masquerade-bit',
};

/**
 * As upstream: a --config file with mode: nftables gives the sync periods and
 * masqueradeAll from its `nftables:` section (the v1alpha1 conversion,
 * Convert_v1alpha1_KubeProxyConfiguration_To_config_KubeProxyConfiguration);
 * without a file, --iptables-sync-period, --iptables-min-sync-period and
 * --masquerade-all apply to every mode (processV1Alpha1Flags). The nftables
 * mode's mark bit is always nftables.masqueradeBit (default 14): upstream has
 * no flag for it, and --iptables-masquerade-bit is the iptables modes' only.
 * parseConfigFile sets every nftables.* value when the file's mode is nftables.
 */
export function settingNames(mode: ProxyModeName, given: ReadonlyMap<string, FlagValue>): SettingNames {
  if (mode !== 'nftables') return IPTABLES_SETTINGS;
  const file = given.has('nftables-sync-period');
  return {
    syncPeriod: file ? 'nftables-sync-period' : 'iptables-sync-period',
    minSyncPeriod: file ? 'nftables-min-sync-period' : 'iptables-min-sync-period',
    masqueradeAll: file ? 'nftables-masquerade-all' : 'masquerade-all',
    masqueradeBit: 'nftables-masquerade-bit',
  };
}

/** Cross-field validation; throws FlagError naming the flag (`names`: where the mode's sync periods came from). */
export function validateConfig(c: ProxyConfig, names: SettingNames = IPTABLES_SETTINGS): void {
  const unknown = unknownFeatureGates(c.featureGates);
  if (unknown.length)
    throw new FlagError('feature-gates', `invalid --feature-gates: unrecognized feature gate${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}`);
  validateCIDRs(c);
  // processHostnameOverrideFlag (the flag) and GetHostname (the file's hostnameOverride) trim it and refuse what is left
  // empty; only an unset or "" value means the OS hostname.
  if (c.hostnameOverride !== '' && c.hostnameOverride.trim() === '')
    throw new FlagError('hostname-override', `invalid --hostname-override ${JSON.stringify(c.hostnameOverride)}: empty hostname-override is invalid`);
  if (!parseIP(c.bindAddress)) throw new FlagError('bind-address', `invalid --bind-address "${c.bindAddress}": not an IP address`);
  for (const [flag, value] of [
    ['healthz-bind-address', c.healthzBindAddress],
    ['metrics-bind-address', c.metricsBindAddress],
  ] as const) {
    if (value !== '' && !parseHostPort(value)) throw new FlagError(flag, `invalid --${flag} "${value}": expected ip or ip:port`);
  }
  validateDurations(c, names);
  validateDetectLocal(c);
  // Upstream accepts only the previous minor of its own version; kube-proxy-ts serves several, so any "<major>.<minor>".
  if (c.showHiddenMetricsForVersion !== '' && !/^\d+\.\d+$/.test(c.showHiddenMetricsForVersion)) {
    throw new FlagError(
      'show-hidden-metrics-for-version',
      `invalid --show-hidden-metrics-for-version "${c.showHiddenMetricsForVersion}": must be omitted or a version <major>.<minor> such as 1.33`,
    );
  }
  validateVModule(c.vmodule);
  // logsapi.Validate: per-file verbosity is klog's, which the JSON logger does not have.
  if (c.loggingFormat !== 'text' && c.vmodule.split(',').some((e) => e !== ''))
    throw new FlagError(
      'vmodule',
      `initialize logging: logging.vmodule: Forbidden: Only supported for text log format (vmodule "${c.vmodule}" with format json)`,
    );
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
  // v1.37 (#138427): CIDRs and the keywords "primary", "localhost" and "all", in any combination; a keyword once.
  const keywords = NODE_PORT_KEYWORDS.map((k) => `"${k}"`).join(', ');
  const seen = new Set<string>();
  for (const a of c.nodePortAddresses) {
    if (NODE_PORT_KEYWORDS.includes(a)) {
      if (seen.has(a)) throw new FlagError('nodeport-addresses', `--nodeport-addresses: "${a}" given more than once`);
      seen.add(a);
    } else if (!parseCIDR(a)) {
      throw new FlagError('nodeport-addresses', `invalid --nodeport-addresses entry "${a}": not a CIDR or one of ${keywords}`);
    }
  }
}

function validateDurations(c: ProxyConfig, names: SettingNames): void {
  const [sync, min] = [names.syncPeriod, names.minSyncPeriod];
  const label = (name: string): string => settingLabel(AGENT_FLAGS.find((s) => s.name === name)!);
  if (c.syncPeriodMs <= 0) throw new FlagError(sync, `${label(sync)} must be greater than 0`);
  if (c.minSyncPeriodMs < 0) throw new FlagError(min, `${label(min)} must be greater than or equal to 0`);
  if (c.minSyncPeriodMs > c.syncPeriodMs) {
    throw new FlagError(min, `${label(min)} (${c.minSyncPeriodMs}ms) must not exceed ${label(sync)} (${c.syncPeriodMs}ms)`);
  }
  // Durations are whole nanoseconds, as Go's: --udp-timeout=0.5ns is 0 and refused.
  if (c.udpIdleTimeoutMs <= 0) throw new FlagError('udp-timeout', '--udp-timeout must be greater than 0');
  if (c.configSyncPeriodMs <= 0) throw new FlagError('config-sync-period', '--config-sync-period must be greater than 0');
  if (c.trafficCountersPeriodMs <= 0) throw new FlagError('traffic-counters-period', '--traffic-counters-period must be greater than 0');
  for (const [flag, ms] of Object.entries(c.conntrackTimeoutsMs)) {
    if (ms < 0) throw new FlagError(flag, `--${flag} must be greater than or equal to 0`);
  }
}

const QUANTITY = /^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$/;
const BINARY_SI: Readonly<Record<string, number>> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
const DECIMAL_SI: Readonly<Record<string, number>> = { n: 1e-9, u: 1e-6, m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };

/**
 * A resource.Quantity (`512`, `1k`, `2Ki`, `1e3`, `1.5Mi`) as a whole number of bytes, rounded up as Quantity.Value()
 * rounds; null when it is not one (its suffix not among resource.Quantity's).
 */
export function quantityBytes(text: string): number | null {
  const m = QUANTITY.exec(text.trim());
  if (!m || Number.isNaN(Number(m[1]))) return null;
  const suffix = m[2]!;
  const exponent = /^[eE]([-+]?[0-9]+)$/.exec(suffix);
  const factor = exponent ? 10 ** Number(exponent[1]) : (BINARY_SI[suffix] ?? DECIMAL_SI[suffix]);
  return factor === undefined ? null : Math.ceil(Number(m[1]) * factor);
}

/**
 * component-base validateTextOptions / validateJSONOptions: split streams and info buffers are alpha options, refused
 * unless the LoggingAlphaOptions gate (or AllAlpha) is on; the buffer sizes are resource.Quantity values.
 */
function validateLoggingOptions(c: ProxyConfig, get: (name: string) => FlagValue): void {
  // The JSON format is component-base's beta feature: LoggingBetaOptions (on by default, off with AllBeta=false) gates it.
  if (c.loggingFormat === 'json' && !featureEnabled(c.featureGates, 'LoggingBetaOptions'))
    throw new FlagError(
      'logging-format',
      'initialize logging: logging.format: Forbidden: Log format json is disabled, see LoggingBetaOptions feature (--logging-format=json)',
    );
  const alpha = featureEnabled(c.featureGates, 'LoggingAlphaOptions');
  for (const format of ['text', 'json'] as const) {
    const split = `log-${format}-split-stream`;
    const buffer = `log-${format}-info-buffer-size`;
    const size = String(get(buffer)).trim();
    const m = QUANTITY.exec(size);
    if (!m || Number.isNaN(Number(m[1])))
      throw new FlagError(
        buffer,
        `invalid argument "${size}" for "--${buffer}" flag: quantities must match the regular expression '${QUANTITY.source}'`,
      );
    if (quantityBytes(size) === null)
      throw new FlagError(buffer, `invalid argument "${size}" for "--${buffer}" flag: unable to parse quantity's suffix`);
    if (alpha) continue;
    if (get(split) === true)
      throw new FlagError(
        split,
        `initialize logging: logging.options.${format}.splitStream: Forbidden: Feature LoggingAlphaOptions is disabled (--${split}; --feature-gates=LoggingAlphaOptions=true enables it)`,
      );
    if (Number(m[1]) !== 0)
      throw new FlagError(
        buffer,
        `initialize logging: logging.options.${format}.infoBufferSize: Forbidden: Feature LoggingAlphaOptions is disabled (--${buffer}=${size}; --feature-gates=LoggingAlphaOptions=true enables it)`,
      );
  }
}

/** klog's moduleSpec.Set: comma-separated pattern=N, N a non-negative int32 (empty entries skipped). */
function validateVModule(value: string): void {
  for (const entry of value.split(',')) {
    if (entry === '') continue;
    const [pattern, level, ...more] = entry.split('=');
    const n = Number(level);
    if (more.length || !pattern || !level || !/^[+-]?\d+$/.test(level) || n > 2 ** 31 - 1)
      throw new FlagError('vmodule', `invalid argument "${value}" for "--vmodule" flag: syntax error: expect comma-separated list of filename=N`);
    if (n < 0) throw new FlagError('vmodule', `invalid argument "${value}" for "--vmodule" flag: negative value for vmodule level`);
  }
}

/** validateDetectLocalConfiguration: the interface modes need their interface. */
function validateDetectLocal(c: ProxyConfig): void {
  if (c.detectLocalMode === 'BridgeInterface' && c.bridgeInterface === '') {
    throw new FlagError(
      'pod-bridge-interface',
      '--detect-local-mode=BridgeInterface needs --pod-bridge-interface (detectLocal.bridgeInterface): must not be empty',
    );
  }
  if (c.detectLocalMode === 'InterfaceNamePrefix' && c.interfaceNamePrefix === '') {
    throw new FlagError(
      'pod-interface-name-prefix',
      '--detect-local-mode=InterfaceNamePrefix needs --pod-interface-name-prefix (detectLocal.interfaceNamePrefix): must not be empty',
    );
  }
}
