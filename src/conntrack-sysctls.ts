/**
 * The conntrack sysctls kube-proxy sets when it starts, in every mode (upstream
 * pkg/proxy/conntrack/sysctls.go setSysctls, called from platformSetup, and by
 * --init-only):
 * - nf_conntrack_max raised to max(maxPerCore × CPUs, min), the product capped
 *   at 2^20 (never lowered), and the module's hashsize raised to a quarter of
 *   it;
 * - the TCP established and CLOSE_WAIT timeouts, tcp_be_liberal and the UDP
 *   timeouts, written when they differ.
 * maxPerCore 0 leaves the table's size as the node has it, and a zero timeout
 * that timeout (kind, k3s and usernetes set both: their nodes are not the
 * host's network namespace).
 *
 * Reads and writes go through the command runner (`cat`, `tee`), so a runner
 * made for a network namespace sets that namespace's timeouts; nf_conntrack_max
 * and the hashsize are the host's, read-only from any other namespace.
 *
 * Upstream exits when a write fails ("could not set conntrack parameters from
 * kube-proxy configuration"). The agent reports each failure, naming the
 * setting that leaves it alone, and goes on serving: a smaller conntrack table
 * is no reason to stop following Services. --init-only, whose only job this
 * is, exits 1.
 */
import { cpus } from 'node:os';
import { readProcFile, writeProcFileError, type CommandRunner } from '../proxier/exec.ts';
import type { Logger } from '../proxier/log.ts';
import type { ProxyConfig } from './config.ts';

export interface ConntrackSettings {
  readonly maxPerCore: number;
  readonly min: number;
  readonly tcpEstablishedTimeoutMs: number;
  readonly tcpCloseWaitTimeoutMs: number;
  readonly tcpBeLiberal: boolean;
  readonly udpTimeoutMs: number;
  readonly udpStreamTimeoutMs: number;
}

export function conntrackSettings(config: ProxyConfig): ConntrackSettings {
  const t = config.conntrackTimeoutsMs;
  return {
    maxPerCore: config.conntrackMaxPerCore,
    min: config.conntrackMin,
    tcpEstablishedTimeoutMs: t['conntrack-tcp-timeout-established'],
    tcpCloseWaitTimeoutMs: t['conntrack-tcp-timeout-close-wait'],
    tcpBeLiberal: config.conntrackTCPBeLiberal,
    udpTimeoutMs: t['conntrack-udp-timeout'],
    udpStreamTimeoutMs: t['conntrack-udp-timeout-stream'],
  };
}

/** Upstream caps maxPerCore × CPUs here, "to avoid excessive memory usage on high-core machines". */
export const CONNTRACK_MAX_LIMIT = 1_048_576;

/** nf_conntrack_max as upstream's getConntrackMax computes it; 0: leave it. */
export function conntrackMax(s: Pick<ConntrackSettings, 'maxPerCore' | 'min'>, numCPU: number): number {
  if (s.maxPerCore <= 0) return 0;
  const scaled = s.maxPerCore * numCPU;
  if (scaled > CONNTRACK_MAX_LIMIT) return CONNTRACK_MAX_LIMIT;
  return scaled > s.min ? scaled : s.min;
}

const NETFILTER = '/proc/sys/net/netfilter/';
export const HASHSIZE = '/sys/module/nf_conntrack/parameters/hashsize';
const CPUS_ONLINE = '/sys/devices/system/cpu/online';

/** One value to set: written when the node's differs ('differs') or is smaller ('raise'). */
export interface SysctlStep {
  readonly path: string;
  readonly value: number;
  readonly when: 'differs' | 'raise';
  /** The setting that leaves this value as the node has it, for messages. */
  readonly leaveWith: string;
}

const seconds = (ms: number): number => Math.floor(ms / 1000);

/** What setSysctls would write, before reading the node (pure). */
export function conntrackSteps(s: ConntrackSettings, numCPU: number): SysctlStep[] {
  const steps: SysctlStep[] = [];
  const max = conntrackMax(s, numCPU);
  const leaveMax = '--conntrack-max-per-core=0 (conntrack.maxPerCore: 0) leaves it';
  if (max > 0) {
    steps.push({ path: `${NETFILTER}nf_conntrack_max`, value: max, when: 'raise', leaveWith: leaveMax });
    steps.push({ path: HASHSIZE, value: Math.floor(max / 4), when: 'raise', leaveWith: leaveMax });
  }
  const timeout = (name: string, ms: number, flag: string, field: string): void => {
    // A timeout under a second is 0 s in upstream's integer division, which would expire every entry: left alone.
    if (seconds(ms) > 0)
      steps.push({ path: `${NETFILTER}${name}`, value: seconds(ms), when: 'differs', leaveWith: `--${flag}=0 (conntrack.${field}: 0s) leaves it` });
  };
  timeout('nf_conntrack_tcp_timeout_established', s.tcpEstablishedTimeoutMs, 'conntrack-tcp-timeout-established', 'tcpEstablishedTimeout');
  timeout('nf_conntrack_tcp_timeout_close_wait', s.tcpCloseWaitTimeoutMs, 'conntrack-tcp-timeout-close-wait', 'tcpCloseWaitTimeout');
  if (s.tcpBeLiberal)
    steps.push({
      path: `${NETFILTER}nf_conntrack_tcp_be_liberal`,
      value: 1,
      when: 'differs',
      leaveWith: '--conntrack-tcp-be-liberal=false (conntrack.tcpBeLiberal: false) leaves it',
    });
  timeout('nf_conntrack_udp_timeout', s.udpTimeoutMs, 'conntrack-udp-timeout', 'udpTimeout');
  timeout('nf_conntrack_udp_timeout_stream', s.udpStreamTimeoutMs, 'conntrack-udp-timeout-stream', 'udpStreamTimeout');
  return steps;
}

/** "0-3,8-11" (the kernel's CPU list format) -> 8; null when it is not one. */
export function countCPUList(text: string): number | null {
  let n = 0;
  for (const part of text.trim().split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) return null;
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) return null;
    n += hi - lo + 1;
  }
  return n;
}

/** A sysctl's dotted name, or the file's path when it is not under /proc/sys. */
export function settingName(path: string): string {
  return path.startsWith('/proc/sys/') ? path.slice('/proc/sys/'.length).replaceAll('/', '.') : path;
}

export interface SysctlOutcome {
  /** "net.netfilter.nf_conntrack_max=131072 (was 65536)", one per value written. */
  readonly set: readonly string[];
  /** One sentence per value not set: which, to what, why, and what leaves it alone. */
  readonly failures: readonly string[];
  /** Some value could not be read: nf_conntrack is not loaded yet (the agent tries again after a sync). */
  readonly missing: boolean;
}

/**
 * Sets the node's conntrack sysctls as upstream's setSysctls does, but goes on
 * after a failure so that every failure is reported. The CPU count is the
 * node's online CPUs (upstream reads sysfs too: the limit is host-wide, and a
 * static CPU policy gives the process fewer).
 */
export async function setConntrackSysctls(s: ConntrackSettings, runner: CommandRunner): Promise<SysctlOutcome> {
  const online = await readProcFile(runner, CPUS_ONLINE);
  const numCPU = (online === null ? null : countCPUList(online)) ?? Math.max(1, cpus().length);
  const set: string[] = [];
  const failures: string[] = [];
  let missing = false;
  for (const step of conntrackSteps(s, numCPU)) {
    const name = settingName(step.path);
    const text = await readProcFile(runner, step.path);
    const current = text !== null && /^\d+$/.test(text) ? Number(text) : null;
    if (text === null) missing = true;
    if (current !== null && (step.when === 'raise' ? current >= step.value : current === step.value)) continue;
    // The hashsize is raised only when read (upstream stops there when it cannot read it).
    if (current === null && step.path === HASHSIZE) {
      failures.push(`cannot read ${name} (is the nf_conntrack module loaded?), so it was not raised to ${step.value}; ${step.leaveWith}`);
      continue;
    }
    const error = await writeProcFileError(runner, step.path, String(step.value));
    if (error === null) set.push(`${name}=${step.value}${current === null ? '' : ` (was ${current})`}`);
    else
      failures.push(
        `cannot set ${name} to ${step.value}${current === null ? '' : ` (it is ${current})`}: ${error}${hint(step, error)}; ${step.leaveWith}`,
      );
  }
  return { set, failures, missing };
}

export interface ConntrackRetryOptions {
  readonly settings: ConntrackSettings;
  readonly runner: CommandRunner;
  readonly now: () => number;
  /** At most one attempt per period. */
  readonly periodMs: number;
  /** Told each attempt's outcome; `complete` once every value could be read (the last attempt). */
  readonly report: (outcome: SysctlOutcome, complete: boolean) => void;
}

/**
 * nf_conntrack not loaded when the agent started (upstream exits then): the values are set once the module is
 * there, which the first sync's rules bring about (they use conntrack). Call the returned function after each sync:
 * it tries again at most once per period and stops after the attempt that could read them all.
 */
export function conntrackRetry(o: ConntrackRetryOptions): () => void {
  let pending = true;
  let running = false;
  let last = -Infinity;
  return () => {
    if (!pending || running || o.now() - last < o.periodMs) return;
    running = true;
    last = o.now();
    void setConntrackSysctls(o.settings, o.runner)
      .then((outcome) => {
        pending = outcome.missing;
        o.report(outcome, !outcome.missing);
      })
      .catch(() => undefined)
      .finally(() => (running = false));
  };
}

/**
 * The agent's node setup: the values set now, each logged (`Set sysctl`, or an error naming the refused value);
 * `failures` for the Node event. When some value could not be read (nf_conntrack not loaded yet), `afterSync` sets
 * them once a sync has loaded the module (conntrackRetry); null otherwise.
 */
export async function agentConntrackSetup(
  config: ProxyConfig,
  o: { readonly runner: CommandRunner; readonly logger: Logger; readonly now: () => number },
): Promise<{ failures: readonly string[]; afterSync: (() => void) | null }> {
  const settings = conntrackSettings(config);
  const report = (outcome: SysctlOutcome, complete = true): void => {
    for (const line of outcome.set) o.logger.info({ sysctl: line }, 'Set sysctl');
    // Quiet about failures while values are still missing: they were said at start.
    if (complete) for (const failure of outcome.failures) o.logger.error(`conntrack setup: ${failure}`);
  };
  const first = await setConntrackSysctls(settings, o.runner);
  report(first);
  const afterSync = first.missing
    ? conntrackRetry({
        settings,
        runner: o.runner,
        now: o.now,
        // Half the sync period: the periodic sync, which may come a little early, always qualifies.
        periodMs: config.syncPeriodMs / 2,
        report: (outcome, complete) => {
          report(outcome, complete);
          if (complete) o.logger.info(`conntrack setup: nf_conntrack is loaded now; ${outcome.failures.length} value(s) refused`);
        },
      })
    : null;
  return { failures: first.failures, afterSync };
}

/** Why a write was refused, where the kernel's answer does not say. */
function hint(step: SysctlStep, error: string): string {
  if (step.path === HASHSIZE && /not supported/i.test(error)) return ' (only the host network namespace may resize the table)';
  if (step.path.endsWith('/nf_conntrack_max') && /permission denied/i.test(error))
    return ' (read-only outside the host network namespace, or /proc/sys is mounted read-only)';
  if (/no such file/i.test(error)) return ' (is the nf_conntrack module loaded?)';
  if (/read-only file system/i.test(error)) return ' (the container needs a writable /proc/sys and /sys: a privileged pod)';
  return '';
}
