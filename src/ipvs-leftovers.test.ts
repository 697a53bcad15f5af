import { describe, expect, it } from 'vitest';
import type { CommandRunner, RunResult } from '../proxier/exec.ts';
import { silentLogger, type Logger } from '../proxier/log.ts';
import { IPVS_IPSET_NAMES, ipvsVirtualServers, linkKind, removeIpvsLeftovers } from './ipvs-leftovers.ts';

/** A node as the commands see it: which device, ipsets and IPVS table it has; every command run is recorded. */
function node(state: {
  kind?: string | null;
  ipsets?: string[];
  inUse?: string[];
  ipvs?: string | null;
  noIpset?: boolean;
  noIpsetModule?: boolean;
}) {
  const ran: string[] = [];
  const ok = (stdout = ''): RunResult => ({ code: 0, stdout, stderr: '' });
  const runner: CommandRunner = {
    run: async (cmd, args) => {
      ran.push([cmd, ...args].join(' '));
      if (cmd === 'ip' && args[2] === 'link' && args[3] === 'show') {
        if (state.kind === undefined) return { code: 1, stdout: '', stderr: 'Device "kube-ipvs0" does not exist.\n' };
        return ok(JSON.stringify([{ ifname: 'kube-ipvs0', ...(state.kind === null ? {} : { linkinfo: { info_kind: state.kind } }) }]));
      }
      if (cmd === 'ip') return ok();
      if (cmd === 'ipset' && state.noIpset) throw new Error('cannot start "ipset": ENOENT');
      if (cmd === 'ipset' && args[0] === 'list') return ok(`${(state.ipsets ?? []).join('\n')}\n`);
      if (cmd === 'ipset' && args[0] === 'destroy') {
        if (state.inUse?.includes(args[1]!))
          return { code: 1, stdout: '', stderr: 'ipset v7.17: Set cannot be destroyed: it is in use by a kernel component\n' };
        return ok();
      }
      const missing: RunResult = { code: 1, stdout: '', stderr: 'No such file or directory' };
      if (cmd === 'cat' && args[0] === '/sys/module/ip_set/parameters/max_sets') return state.noIpsetModule ? missing : ok('256\n');
      if (cmd === 'cat') return state.ipvs == null ? missing : ok(state.ipvs);
      throw new Error(`unexpected ${cmd}`);
    },
  };
  const lines: { level: string; msg: string }[] = [];
  const log: Logger = {
    ...silentLogger(),
    info: ((_f: object, msg: string) => void lines.push({ level: 'info', msg })) as Logger['info'],
    warn: ((_f: object, msg: string) => void lines.push({ level: 'warn', msg })) as Logger['warn'],
    error: ((_f: object, msg: string) => void lines.push({ level: 'error', msg })) as Logger['error'],
  };
  return { runner, ran, lines, log };
}

const PROC_NET_IP_VS = `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port Forward Weight ActiveConn InActConn
TCP  0A60000A:0035 rr
  -> 0AF40102:0035      Masq    1      0          0
UDP  0A60000A:0035 rr
FWM  00000001 rr
`;

describe("ipvs mode's leftovers (upstream ipvs.CleanupLeftovers, kept to kube-proxy's own)", () => {
  it('deletes kube-ipvs0 when it is a dummy device, destroys both families of ipsets, and reports the virtual servers left', async () => {
    const n = node({ kind: 'dummy', ipsets: ['KUBE-CLUSTER-IP', 'KUBE-6-CLUSTER-IP', 'cali40all-hosts', 'KUBE-6-IPVS-IPS'], ipvs: PROC_NET_IP_VS });
    expect(await removeIpvsLeftovers(n.runner, n.log)).toBe(0);
    expect(n.ran).toContain('ip link del dev kube-ipvs0');
    expect(n.ran.filter((c) => c.startsWith('ipset destroy'))).toEqual([
      'ipset destroy KUBE-CLUSTER-IP',
      'ipset destroy KUBE-6-CLUSTER-IP',
      'ipset destroy KUBE-6-IPVS-IPS',
    ]);
    expect(n.ran).not.toContain('ipset destroy cali40all-hosts');
    expect(n.lines.map((l) => `${l.level}: ${l.msg}`)).toEqual([
      "info: removed ipvs mode's dummy device kube-ipvs0: the service IPs are no longer local addresses",
      'info: destroyed 3 ipsets of ipvs mode',
      "warn: 3 IPVS virtual servers are left (not flushed: IPVS may hold other programs' services); `ipvsadm -C` removes them all",
    ]);
  });

  it('leaves a kube-ipvs0 of another kind, sets still matched by rules, and IPVS on a node the ipvs mode never ran on', async () => {
    const n = node({ kind: 'veth', ipsets: ['KUBE-LOOP-BACK'], inUse: ['KUBE-LOOP-BACK'], ipvs: PROC_NET_IP_VS });
    expect(await removeIpvsLeftovers(n.runner, n.log)).toBe(0);
    expect(n.ran).not.toContain('ip link del dev kube-ipvs0');
    expect(n.lines.map((l) => l.level)).toEqual(['warn', 'info', 'warn']);
    expect(n.lines[0]!.msg).toBe("kube-ipvs0 is not ipvs mode's dummy device (it is veth): left alone");
    expect(n.lines[1]!.msg).toMatch(/^1 ipsets of ipvs mode are still matched by rules/);

    // kube-vip or keepalived using IPVS on a node without kube-ipvs0 or ipvs ipsets: nothing said, nothing read.
    const other = node({ ipsets: [], ipvs: PROC_NET_IP_VS });
    expect(await removeIpvsLeftovers(other.runner, other.log)).toBe(0);
    expect(other.lines).toEqual([]);
    expect(other.ran).not.toContain('cat /proc/net/ip_vs');
  });

  it('a node without the ipset tool or IPVS is nothing to clean; without the ip_set module, ipset is not asked (it would load it)', async () => {
    const n = node({ noIpset: true, ipvs: null });
    expect(await removeIpvsLeftovers(n.runner, n.log)).toBe(0);
    expect(n.lines).toEqual([]);
    const bare = node({ noIpsetModule: true, ipsets: ['KUBE-CLUSTER-IP'] });
    expect(await removeIpvsLeftovers(bare.runner, bare.log)).toBe(0);
    expect(bare.ran.filter((c) => c.startsWith('ipset'))).toEqual([]);
  });

  it('reads /proc/net/ip_vs and `ip -d -j link` output; names both families of sets', () => {
    expect(ipvsVirtualServers(PROC_NET_IP_VS)).toBe(3);
    expect(ipvsVirtualServers('IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n')).toBe(0);
    expect(linkKind('[{"ifname":"kube-ipvs0","linkinfo":{"info_kind":"dummy"}}]')).toBe('dummy');
    expect(linkKind('[{"ifname":"kube-ipvs0"}]')).toBeNull();
    expect(linkKind('not json')).toBeNull();
    expect(IPVS_IPSET_NAMES.size).toBe(34);
    // ipset names hold 31 characters: upstream cuts the longer IPv6 ones.
    expect(IPVS_IPSET_NAMES.has('KUBE-6-NODE-PORT-LOCAL-SCTP-HAS')).toBe(true);
    expect(IPVS_IPSET_NAMES.has('KUBE-6-LOAD-BALANCER-SOURCE-CID')).toBe(true);
    expect([...IPVS_IPSET_NAMES].every((n) => n.length <= 31)).toBe(true);
  });
});
