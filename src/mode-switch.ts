/**
 * Switching modes and --cleanup: every mode removes the other two modes'
 * rules when it starts, so `--mode` can be flipped by restarting the agent,
 * as upstream's platformCleanup: the iptables and userspace chains
 * (iptables/chains.ts says whose each is; upstream's have the same names) in
 * both families and both iptables backends, and the nftables tables
 * `ip kube-proxy` and `ip6 kube-proxy` (upstream's nftables mode uses the
 * same). --cleanup removes all three modes' rules.
 */
import { removeKubeProxyRules } from '../iptables/cleanup.ts';
import type { Iptables, IptablesBackend } from '../iptables/iptables.ts';
import { createIptables } from '../iptables/restore.ts';
import type { NftFamily } from '../nftables/model.ts';
import { Nft } from '../nftables/nft.ts';
import type { CommandRunner } from '../proxier/exec.ts';
import type { Logger } from '../proxier/log.ts';
import type { ProxyModeName } from '../proxier/mode.ts';

const NFT_FAMILIES: readonly NftFamily[] = ['ip', 'ip6'];

/** A family or backend this node does not have is not a failure. */
const ABSENT = /not found|cannot start|No such file|can't initialize|Table does not exist|Permission denied|Protocol not supported/i;

export interface SwitchTargets {
  /** The iptables of every family and backend to clean (the agent's own handles first). */
  readonly iptables: readonly BackendIptables[];
  /** Deletes a family's nftables table (false when there was none); null: nft is not available. */
  readonly deleteNftTable: ((family: NftFamily) => Promise<boolean>) | null;
}

export interface BackendIptables {
  readonly backend: IptablesBackend;
  readonly ipt: Iptables;
}

/** Both backends' iptables of both families (the given ones first), for --cleanup and the mode switch on a real node. */
export function everyIptables(runner: CommandRunner, first: readonly BackendIptables[] = []): BackendIptables[] {
  const out = [...first];
  for (const backend of ['nft', 'legacy'] as IptablesBackend[]) {
    for (const family of ['IPv4', 'IPv6'] as const) {
      if (!out.some((i) => i.ipt.family === family && i.backend === backend)) out.push({ backend, ipt: createIptables({ family, backend, runner }) });
    }
  }
  return out;
}

/**
 * Removes the rules of every mode but `keep` (all of them for null). Returns
 * the number of failures; absent backends and families are skipped.
 */
export async function removeModes(keep: ProxyModeName | null, targets: SwitchTargets, log: Logger): Promise<number> {
  let failures = 0;
  // Only the other iptables-based mode's chains, or both modes' at once.
  const owner = keep === 'iptables' ? 'userspace' : keep === 'userspace' ? 'iptables' : undefined;
  const what = owner === undefined ? 'iptables- and userspace-mode' : `${owner}-mode`;
  for (const { backend, ipt } of targets.iptables) {
    try {
      const removed = await removeKubeProxyRules(ipt, owner === undefined ? {} : { owner });
      if (removed) log.info({ backend, ipFamily: ipt.family, chains: removed }, `removed ${what} rules`);
    } catch (err) {
      const msg = (err as Error).message;
      if (ABSENT.test(msg)) continue;
      failures++;
      log.error({ backend, ipFamily: ipt.family, err: msg }, `cannot remove ${what} rules`);
    }
  }
  if (keep !== 'nftables' && targets.deleteNftTable) {
    for (const family of NFT_FAMILIES) {
      try {
        if (await targets.deleteNftTable(family)) log.info({ table: `${family} kube-proxy` }, 'removed nftables-mode rules');
      } catch (err) {
        const msg = (err as Error).message;
        if (ABSENT.test(msg)) continue;
        failures++;
        log.error({ table: `${family} kube-proxy`, err: msg }, 'cannot remove nftables-mode rules');
      }
    }
  }
  return failures;
}

/**
 * What the agent cleans when it starts: its own iptables handles, the other
 * backend's too on a real node (injected handles stand for the whole node in
 * tests), and the nftables tables through the mode's nft or the node's.
 */
export function switchTargets(
  probe: { readonly backend: IptablesBackend; readonly handles: ReadonlyMap<unknown, Iptables> },
  deps: {
    readonly runner: CommandRunner;
    readonly iptables?: unknown;
    readonly nftables?: { readonly nft?: { deleteTable(f: NftFamily): Promise<boolean> } };
  },
): SwitchTargets {
  const own = [...probe.handles.values()].map((ipt) => ({ backend: probe.backend, ipt }));
  const nft = deps.nftables?.nft ?? new Nft(deps.runner);
  return { iptables: deps.iptables ? own : everyIptables(deps.runner, own), deleteNftTable: (family) => nft.deleteTable(family) };
}
