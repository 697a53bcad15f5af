/**
 * Facts about the node the rules are for, read once at start by the agent and
 * by `diff` and `trace`: the iptables backend in use, the families whose binaries work,
 * the iptables version (for --random-fully) and whether conntrack is liberal
 * (no INVALID drop rule then).
 */
import { detectBackend } from './backend-detect.ts';
import type { Iptables, IptablesBackend } from './iptables.ts';
import { createIptables, iptablesVersion, supportsRandomFully } from './restore.ts';
import type { IPFamily } from '../proxier/types.ts';
import type { Logger } from '../proxier/log.ts';
import { readProcFile, type CommandRunner } from '../proxier/exec.ts';

export interface NodeProbe {
  readonly backend: IptablesBackend;
  readonly backendReason: string;
  readonly handles: ReadonlyMap<IPFamily, Iptables>;
  readonly version: string | null;
  readonly randomFully: boolean;
  readonly conntrackLiberal: boolean;
}

export interface ProbeOptions {
  readonly runner: CommandRunner;
  readonly logger: Logger;
  /** Forced backend; detected when absent or "auto". */
  readonly backend?: IptablesBackend | 'auto';
  /** The iptables of each family to use instead of the binaries (tests: FakeIptables); taken as working. */
  readonly handles?: ReadonlyMap<IPFamily, Iptables>;
  /** The handles are only used to remove other modes' rules (nftables mode): a family without iptables is no loss. */
  readonly cleanupOnly?: boolean;
}

export async function probeNode(o: ProbeOptions): Promise<NodeProbe> {
  const detected = o.backend && o.backend !== 'auto' ? { backend: o.backend, reason: 'configured' } : await detectBackend({ runner: o.runner });
  const handles = new Map<IPFamily, Iptables>(o.handles ?? []);
  for (const family of o.handles ? [] : (['IPv4', 'IPv6'] as IPFamily[])) {
    const ipt = createIptables({ family, backend: detected.backend, runner: o.runner });
    try {
      await ipt.save(['filter']);
      handles.set(family, ipt);
    } catch (err) {
      if (o.cleanupOnly)
        o.logger.info({ ipFamily: family, err: (err as Error).message }, `${family} iptables does not work here: no iptables rules to remove`);
      else
        o.logger.warn({ ipFamily: family, err: (err as Error).message }, `${family} iptables does not work here: ${family} services are not proxied`);
    }
  }
  const version = await iptablesVersion(o.runner).catch(() => null);
  return {
    backend: detected.backend,
    backendReason: detected.reason,
    handles,
    version: version?.text ?? null,
    randomFully: version ? supportsRandomFully(version) : true,
    conntrackLiberal: (await readProcFile(o.runner, '/proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal')) === '1',
  };
}
