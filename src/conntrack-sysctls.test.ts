/**
 * The conntrack sysctls at start, against upstream's tests of
 * pkg/proxy/conntrack/sysctls.go (TestSetupConntrack, getConntrackMax) and a
 * node's files as a command runner serves them: values, refusals (a
 * read-only nf_conntrack_max outside the host namespace, a hashsize only the
 * host may change, a module not loaded) and what each message names.
 */
import { describe, expect, it, vi } from 'vitest';
import type { CommandRunner, RunResult } from '../proxier/exec.ts';
import { configFromFlags } from './config.ts';
import {
  CONNTRACK_MAX_LIMIT,
  conntrackMax,
  conntrackRetry,
  conntrackSettings,
  conntrackSteps,
  countCPUList,
  setConntrackSysctls,
  settingName,
  type ConntrackSettings,
  type SysctlOutcome,
} from './conntrack-sysctls.ts';

const DEFAULTS = conntrackSettings(configFromFlags(new Map()));
const NONE: ConntrackSettings = {
  maxPerCore: 0,
  min: 0,
  tcpEstablishedTimeoutMs: 0,
  tcpCloseWaitTimeoutMs: 0,
  tcpBeLiberal: false,
  udpTimeoutMs: 0,
  udpStreamTimeoutMs: 0,
};
const NF = '/proc/sys/net/netfilter/';
const HASH = '/sys/module/nf_conntrack/parameters/hashsize';

/** A node's files: `cat` reads, `tee` writes; a refusal per path as tee reports it. */
function node(files: Record<string, string>, refuse: Record<string, string> = {}) {
  const state = new Map(Object.entries(files));
  const writes: string[] = [];
  const reads: string[] = [];
  const runner: CommandRunner = {
    async run(cmd, args, opts): Promise<RunResult> {
      const path = args[0]!;
      if (cmd === 'cat') {
        reads.push(path);
        const v = state.get(path);
        return v === undefined
          ? { code: 1, stdout: '', stderr: `cat: ${path}: No such file or directory\n` }
          : { code: 0, stdout: `${v}\n`, stderr: '' };
      }
      if (cmd === 'tee') {
        const why = refuse[path] ?? (state.has(path) ? null : 'No such file or directory');
        if (why) return { code: 1, stdout: '', stderr: `tee: ${path}: ${why}\n` };
        state.set(path, opts!.input!.trim());
        writes.push(`${path}=${opts!.input}`);
        return { code: 0, stdout: opts!.input!, stderr: '' };
      }
      throw new Error(`unexpected ${cmd}`);
    },
  };
  return { runner, writes, reads, state };
}

/** A Debian node's kernel defaults with nf_conntrack loaded (2 CPUs online). */
const KERNEL = {
  '/sys/devices/system/cpu/online': '0-1',
  [`${NF}nf_conntrack_max`]: '65536',
  [HASH]: '16384',
  [`${NF}nf_conntrack_tcp_timeout_established`]: '432000',
  [`${NF}nf_conntrack_tcp_timeout_close_wait`]: '60',
  [`${NF}nf_conntrack_tcp_be_liberal`]: '0',
  [`${NF}nf_conntrack_udp_timeout`]: '30',
  [`${NF}nf_conntrack_udp_timeout_stream`]: '120',
};

describe('getConntrackMax (upstream pkg/proxy/conntrack)', () => {
  it('is maxPerCore × CPUs, at least min; 0 (leave it) when maxPerCore is 0', () => {
    expect(conntrackMax({ maxPerCore: 32768, min: 131072 }, 2)).toBe(131072);
    expect(conntrackMax({ maxPerCore: 32768, min: 131072 }, 8)).toBe(262144);
    expect(conntrackMax({ maxPerCore: 32768, min: 0 }, 1)).toBe(32768);
    expect(conntrackMax({ maxPerCore: 0, min: 131072 }, 8)).toBe(0);
  });

  it('caps maxPerCore × CPUs at 2^20 on many-core nodes; a larger min is the operator’s and kept', () => {
    expect(conntrackMax({ maxPerCore: 32768, min: 131072 }, 64)).toBe(CONNTRACK_MAX_LIMIT);
    expect(conntrackMax({ maxPerCore: 1, min: 2_000_000 }, 4)).toBe(2_000_000);
  });

  it('counts the kernel’s online CPU list', () => {
    expect(countCPUList('0-1')).toBe(2);
    expect(countCPUList('0-3,8-11\n')).toBe(8);
    expect(countCPUList('0')).toBe(1);
    expect(countCPUList('garbage')).toBeNull();
    expect(countCPUList('3-1')).toBeNull();
  });
});

describe('TestSetupConntrack (upstream): what is set', () => {
  it('sets nothing when every setting is 0 (kind, k3s, usernetes)', async () => {
    const n = node(KERNEL);
    expect(conntrackSteps(NONE, 2)).toEqual([]);
    expect(await setConntrackSysctls(NONE, n.runner)).toEqual({ set: [], failures: [], missing: false });
    expect(n.writes).toEqual([]);
  });

  it('applies upstream’s defaults to a fresh node: max and hashsize raised, TCP timeouts 24 h and 1 h', async () => {
    const n = node(KERNEL);
    const r = await setConntrackSysctls(DEFAULTS, n.runner);
    expect(r.failures).toEqual([]);
    expect(n.writes).toEqual([
      `${NF}nf_conntrack_max=131072`,
      `${HASH}=32768`,
      `${NF}nf_conntrack_tcp_timeout_established=86400`,
      `${NF}nf_conntrack_tcp_timeout_close_wait=3600`,
    ]);
    expect(r.set[0]).toBe('net.netfilter.nf_conntrack_max=131072 (was 65536)');
  });

  it('never lowers nf_conntrack_max or the hashsize; a timeout already right is not written', async () => {
    const n = node({
      ...KERNEL,
      [`${NF}nf_conntrack_max`]: '1048576',
      [HASH]: '262144',
      [`${NF}nf_conntrack_tcp_timeout_established`]: '86400',
    });
    await setConntrackSysctls(DEFAULTS, n.runner);
    expect(n.writes).toEqual([`${NF}nf_conntrack_tcp_timeout_close_wait=3600`]);
  });

  it('lowers a timeout that is longer than asked (timeouts are set, not raised)', async () => {
    const n = node({ ...KERNEL, [`${NF}nf_conntrack_tcp_timeout_close_wait`]: '7200' });
    await setConntrackSysctls({ ...NONE, tcpCloseWaitTimeoutMs: 3_600_000 }, n.runner);
    expect(n.writes).toEqual([`${NF}nf_conntrack_tcp_timeout_close_wait=3600`]);
  });

  it('sets tcp_be_liberal and the UDP timeouts when asked, in whole seconds', async () => {
    const n = node(KERNEL);
    await setConntrackSysctls({ ...NONE, tcpBeLiberal: true, udpTimeoutMs: 45_500, udpStreamTimeoutMs: 180_000 }, n.runner);
    expect(n.writes).toEqual([`${NF}nf_conntrack_tcp_be_liberal=1`, `${NF}nf_conntrack_udp_timeout=45`, `${NF}nf_conntrack_udp_timeout_stream=180`]);
  });

  it('leaves a timeout under a second alone (0 s would expire every entry)', () => {
    expect(conntrackSteps({ ...NONE, tcpEstablishedTimeoutMs: 500 }, 2)).toEqual([]);
  });

  it('sizes the table by the node’s online CPUs', async () => {
    const n = node({ ...KERNEL, '/sys/devices/system/cpu/online': '0-15' });
    await setConntrackSysctls({ ...NONE, maxPerCore: 32768, min: 131072 }, n.runner);
    expect(n.writes).toEqual([`${NF}nf_conntrack_max=524288`, `${HASH}=131072`]);
  });
});

describe('TestSetupConntrack (upstream): failures name the value and what leaves it alone', () => {
  it('a namespace that is not the host’s: nf_conntrack_max read-only, hashsize refused; the timeouts still set', async () => {
    const n = node(KERNEL, { [`${NF}nf_conntrack_max`]: 'Permission denied', [HASH]: 'Operation not supported' });
    const r = await setConntrackSysctls(DEFAULTS, n.runner);
    expect(r.failures).toEqual([
      'cannot set net.netfilter.nf_conntrack_max to 131072 (it is 65536): Permission denied (read-only outside the host network namespace, or /proc/sys is mounted read-only); --conntrack-max-per-core=0 (conntrack.maxPerCore: 0) leaves it',
      `cannot set ${HASH} to 32768 (it is 16384): Operation not supported (only the host network namespace may resize the table); --conntrack-max-per-core=0 (conntrack.maxPerCore: 0) leaves it`,
    ]);
    expect(n.writes).toEqual([`${NF}nf_conntrack_tcp_timeout_established=86400`, `${NF}nf_conntrack_tcp_timeout_close_wait=3600`]);
  });

  it('a read-only /proc/sys (an unprivileged container) names the timeout’s own setting', async () => {
    const n = node(KERNEL, { [`${NF}nf_conntrack_tcp_timeout_established`]: 'Read-only file system' });
    const r = await setConntrackSysctls({ ...NONE, tcpEstablishedTimeoutMs: 86_400_000 }, n.runner);
    expect(r.failures).toEqual([
      'cannot set net.netfilter.nf_conntrack_tcp_timeout_established to 86400 (it is 432000): Read-only file system (the container needs a writable /proc/sys and /sys: a privileged pod); --conntrack-tcp-timeout-established=0 (conntrack.tcpEstablishedTimeout: 0s) leaves it',
    ]);
  });

  it('nf_conntrack not loaded: every value is missing, and each failure says so', async () => {
    const n = node({ '/sys/devices/system/cpu/online': '0-1' });
    const r = await setConntrackSysctls(DEFAULTS, n.runner);
    expect(r.missing).toBe(true);
    expect(r.failures).toHaveLength(4);
    for (const f of r.failures) expect(f).toContain('is the nf_conntrack module loaded?');
    expect(r.failures[1]).toBe(
      `cannot read ${HASH} (is the nf_conntrack module loaded?), so it was not raised to 32768; --conntrack-max-per-core=0 (conntrack.maxPerCore: 0) leaves it`,
    );
  });

  it('names sysctls as sysctl(8) does', () => {
    expect(settingName(`${NF}nf_conntrack_max`)).toBe('net.netfilter.nf_conntrack_max');
    expect(settingName(HASH)).toBe(HASH);
  });
});

describe('the settings from flags and the config file', () => {
  it('has upstream’s defaults: 32768 per core, min 131072, 24 h established, 1 h CLOSE_WAIT, the rest off', () => {
    expect(DEFAULTS).toEqual({
      maxPerCore: 32768,
      min: 131072,
      tcpEstablishedTimeoutMs: 86_400_000,
      tcpCloseWaitTimeoutMs: 3_600_000,
      tcpBeLiberal: false,
      udpTimeoutMs: 0,
      udpStreamTimeoutMs: 0,
    });
  });

  it('no longer calls the conntrack flags and --oom-score-adj unimplemented', () => {
    const c = configFromFlags(
      new Map<string, number>([
        ['conntrack-max-per-core', 0],
        ['conntrack-min', 0],
        ['oom-score-adj', 100],
      ]),
    );
    expect(c.notImplemented).toEqual([]);
    expect(c.oomScoreAdj).toBe(100);
  });
});

describe('nf_conntrack loaded after the start (upstream exits instead)', () => {
  it('tries again after a sync, at most once per period, and stops once it could read every value', async () => {
    const n = node({ '/sys/devices/system/cpu/online': '0-1' });
    const attempts = () => n.reads.filter((p) => p === '/sys/devices/system/cpu/online').length;
    let t = 0;
    const outcomes: SysctlOutcome[] = [];
    const retry = conntrackRetry({
      settings: DEFAULTS,
      runner: n.runner,
      now: () => t,
      periodMs: 30_000,
      report: (o, complete) => void (complete && outcomes.push(o)),
    });
    const settle = () => new Promise((r) => setTimeout(r, 20));

    retry(); // the first sync: the module is still missing, nothing said
    await settle();
    retry(); // another sync within the period: no attempt
    await settle();
    expect(attempts()).toBe(1);
    expect(outcomes).toEqual([]);

    for (const [path, value] of Object.entries(KERNEL)) n.state.set(path, value); // the rules loaded nf_conntrack
    t = 10_000;
    retry();
    await settle();
    expect(attempts()).toBe(1);
    t = 30_000;
    retry();
    await vi.waitFor(() => expect(outcomes).toHaveLength(1));
    expect(outcomes[0]!.failures).toEqual([]);
    expect(n.writes).toEqual([
      `${NF}nf_conntrack_max=131072`,
      `${HASH}=32768`,
      `${NF}nf_conntrack_tcp_timeout_established=86400`,
      `${NF}nf_conntrack_tcp_timeout_close_wait=3600`,
    ]);
    t = 90_000;
    retry();
    await settle();
    expect(attempts()).toBe(2);
  });
});
