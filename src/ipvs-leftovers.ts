/**
 * What upstream's ipvs mode leaves on a node besides its iptables chains (iptables/chains.ts names those, owner
 * 'ipvs'): the dummy device kube-ipvs0, which holds every ClusterIP and external IP as a local address; the ipsets
 * its rules match; and the IPVS virtual servers. Upstream's ipvs.CleanupLeftovers (run by --cleanup and by the
 * nftables mode at start) flushes every IPVS virtual server, deletes kube-ipvs0 and destroys the IPv4 ipsets.
 *
 * Kube-proxy-ts removes them in every mode at start (upstream's iptables mode keeps them, since its cleanup would
 * take the chains both modes share; here only the ipvs mode's own go) and with --cleanup:
 * - kube-ipvs0, when it is a dummy device (upstream refuses another kind too); with it gone, the ClusterIPs are no
 *   longer local addresses, which made NodePorts answer on every ClusterIP in the iptables mode;
 * - the ipsets of both families (the IPv6 ones are KUBE-6-...; upstream destroys the IPv4 names only). A set still
 *   matched by a rule (the shared KUBE-SERVICES, until the iptables mode's first sync rewrites it) is left for
 *   the next start;
 * - IPVS virtual servers are not flushed: IPVS may carry other programs' services (kube-vip, keepalived). Without
 *   kube-ipvs0 kube-proxy's stop matching; where the ipvs mode ran, the agent says how many are left and that
 *   `ipvsadm -C` removes all.
 */
import { readProcFile, type CommandRunner } from '../proxier/exec.ts';
import type { Logger } from '../proxier/log.ts';

export const IPVS_DUMMY_DEVICE = 'kube-ipvs0';

/** pkg/proxy/ipvs ipsetInfo, the IPv4 names; NewIPSet names the IPv6 ones KUBE-6-..., cut to ipset's 31 characters. */
export const IPVS_IPSETS: readonly string[] = [
  'KUBE-LOOP-BACK',
  'KUBE-CLUSTER-IP',
  'KUBE-EXTERNAL-IP',
  'KUBE-EXTERNAL-IP-LOCAL',
  'KUBE-LOAD-BALANCER',
  'KUBE-LOAD-BALANCER-FW',
  'KUBE-LOAD-BALANCER-LOCAL',
  'KUBE-LOAD-BALANCER-SOURCE-IP',
  'KUBE-LOAD-BALANCER-SOURCE-CIDR',
  'KUBE-NODE-PORT-TCP',
  'KUBE-NODE-PORT-LOCAL-TCP',
  'KUBE-NODE-PORT-UDP',
  'KUBE-NODE-PORT-LOCAL-UDP',
  'KUBE-NODE-PORT-SCTP-HASH',
  'KUBE-NODE-PORT-LOCAL-SCTP-HASH',
  'KUBE-HEALTH-CHECK-NODE-PORT',
  'KUBE-IPVS-IPS',
];

/** The IPv6 set's name for an IPv4 one (NewIPSet: "KUBE-6-" prefix, truncated to 31 characters). */
export const ipv6SetName = (name: string): string => name.replace(/^KUBE-/, 'KUBE-6-').slice(0, 31);

/** Both families' names. */
export const IPVS_IPSET_NAMES: ReadonlySet<string> = new Set(IPVS_IPSETS.flatMap((n) => [n, ipv6SetName(n)]));

/** The link kind of `ip -d -j link show` output (e.g. "dummy", "veth"); null for a plain device or no JSON. */
export function linkKind(json: string): string | null {
  try {
    const links = JSON.parse(json) as { linkinfo?: { info_kind?: string } }[];
    return links[0]?.linkinfo?.info_kind ?? null;
  } catch {
    return null;
  }
}

/** The virtual servers /proc/net/ip_vs lists (its lines for TCP, UDP, SCTP and firewall-mark services). */
export function ipvsVirtualServers(procNetIpVs: string): number {
  return procNetIpVs.split('\n').filter((l) => /^(TCP|UDP|SCTP|FWM)\s/.test(l)).length;
}

/** A tool the node does not have (or a kernel without the feature) is nothing to clean, not a failure. */
const cannotRun = (err: unknown): boolean => /cannot start/.test((err as Error).message);

/** Removes what the ipvs mode left besides its chains (run after them: a set a rule matches cannot go). Returns failures. */
export async function removeIpvsLeftovers(runner: CommandRunner, log: Logger): Promise<number> {
  let failures = 0;
  // Virtual servers are only reported where the ipvs mode ran: a node may use IPVS for something else.
  let ranIpvsMode = false;
  try {
    const link = await runner.run('ip', ['-d', '-j', 'link', 'show', 'dev', IPVS_DUMMY_DEVICE]);
    if (link.code === 0) {
      const kind = linkKind(link.stdout);
      ranIpvsMode = kind === 'dummy';
      if (kind !== 'dummy')
        log.warn(
          { device: IPVS_DUMMY_DEVICE, kind },
          `${IPVS_DUMMY_DEVICE} is not ipvs mode's dummy device (it is ${kind ?? 'a plain device'}): left alone`,
        );
      else {
        const del = await runner.run('ip', ['link', 'del', 'dev', IPVS_DUMMY_DEVICE]);
        if (del.code === 0)
          log.info(
            { device: IPVS_DUMMY_DEVICE },
            `removed ipvs mode's dummy device ${IPVS_DUMMY_DEVICE}: the service IPs are no longer local addresses`,
          );
        else {
          failures++;
          log.error({ device: IPVS_DUMMY_DEVICE, err: del.stderr.trim() }, `cannot remove ipvs mode's dummy device ${IPVS_DUMMY_DEVICE}`);
        }
      }
    }
  } catch (err) {
    if (!cannotRun(err)) throw err;
  }

  // Asking ipset loads the kernel module on a node that never had one: only look where it is there.
  const ipsetModule = (await readProcFile(runner, '/sys/module/ip_set/parameters/max_sets')) !== null;
  if (ipsetModule)
    try {
      const list = await runner.run('ipset', ['list', '-n']);
      const present = list.code === 0 ? list.stdout.split('\n').filter((n) => IPVS_IPSET_NAMES.has(n.trim())) : [];
      ranIpvsMode ||= present.length > 0;
      const destroyed: string[] = [];
      const inUse: string[] = [];
      for (const name of present) {
        const r = await runner.run('ipset', ['destroy', name]);
        if (r.code === 0) destroyed.push(name);
        else if (/in use/i.test(r.stderr)) inUse.push(name);
        else if (!/does not exist/i.test(r.stderr)) {
          failures++;
          log.error({ ipset: name, err: r.stderr.trim() }, `cannot destroy ipvs mode's ipset ${name}`);
        }
      }
      if (destroyed.length) log.info({ ipsets: destroyed }, `destroyed ${destroyed.length} ipsets of ipvs mode`);
      if (inUse.length)
        log.info(
          { ipsets: inUse },
          `${inUse.length} ipsets of ipvs mode are still matched by rules (KUBE-SERVICES until the first sync): left for the next start`,
        );
    } catch (err) {
      if (!cannotRun(err)) throw err;
    }

  if (!ranIpvsMode) return failures;
  const ipvs = await readProcFile(runner, '/proc/net/ip_vs');
  const servers = ipvs === null ? 0 : ipvsVirtualServers(ipvs);
  if (servers > 0)
    log.warn(
      { virtualServers: servers },
      `${servers} IPVS virtual servers are left (not flushed: IPVS may hold other programs' services); \`ipvsadm -C\` removes them all`,
    );
  return failures;
}
