/**
 * Switching modes and --cleanup: every mode removes the other two modes'
 * rules when it starts, so `--mode` can be flipped by restarting the agent,
 * as upstream's platformCleanup: the iptables and userspace chains
 * (iptables/chains.ts says whose each is; upstream's have the same names) in
 * both families and both iptables backends, and the nftables tables
 * `ip kube-proxy` and `ip6 kube-proxy` (upstream's nftables mode uses the
 * same). --cleanup removes all three modes' rules. What upstream's ipvs mode
 * left goes too, in every mode: its own chains (not those it shares with the
 * iptables mode), its dummy device and its ipsets (src/ipvs-leftovers.ts).
 */
import type { ChainOwner } from '../iptables/chains.ts';
import { removeKubeProxyRules } from '../iptables/cleanup.ts';
import type { Iptables, IptablesBackend } from '../iptables/iptables.ts';
import { createIptables } from '../iptables/restore.ts';
import type { NftFamily } from '../nftables/model.ts';
import { Nft } from '../nftables/nft.ts';
import type { CommandRunner } from '../proxier/exec.ts';
import type { Logger } from '../proxier/log.ts';
import type { ProxyModeName } from '../proxier/mode.ts';
import { removeIpvsLeftovers } from './ipvs-leftovers.ts';

const NFT_FAMILIES: readonly NftFamily[] = ['ip', 'ip6'];

/** A family or backend this node does not have is not a failure. */
const ABSENT = /not found|cannot start|No such file|can't initialize|Table does not exist|Permission denied|Protocol not supported/i;

export interface SwitchTargets {
  /** The iptables of every family and backend to clean (the agent's own handles first). */
  readonly iptables: readonly BackendIptables[];
  /** Deletes a family's nftables table (false when there was none); null: nft is not available. */
  readonly deleteNftTable: ((family: NftFamily) => Promise<boolean>) | null;
  /** Runs the commands that remove ipvs mode's device, ipsets (src/ipvs-leftovers.ts); absent: left alone (tests). */
  readonly ipvs?: CommandRunner;
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
  // The other iptables-based modes' chains (upstream's ipvs mode's own included), or all of them.
  const owners: Exclude<ChainOwner, 'kubelet'>[] = (['iptables', 'userspace', 'ipvs'] as const).filter((o) => o !== keep);
  const what = `${owners.join('-, ').replace(/, (?=[^,]*$)/, ' and ')}-mode`;
  for (const { backend, ipt } of targets.iptables) {
    try {
      const { removed, kept } = await removeKubeProxyRules(ipt, { owners });
      if (removed) log.info({ backend, ipFamily: ipt.family, chains: removed }, `removed ${what} rules`);
      for (const k of kept)
        log.info(
          { backend, ipFamily: ipt.family, table: k.table, chain: k.chain, jumpedFrom: k.jumpedFrom },
          `kept chain ${k.chain} (table ${k.table}): ${k.jumpedFrom.join(', ')} jump${k.jumpedFrom.length === 1 ? 's' : ''} to it, rules another tool still uses`,
        );
    } catch (err) {
      const msg = (err as Error).message;
      if (ABSENT.test(msg)) continue;
      failures++;
      log.error({ backend, ipFamily: ipt.family, err: msg }, `cannot remove ${what} rules`);
    }
  }
  // After the chains: an ipset a rule still matches cannot be destroyed.
  if (targets.ipvs)
    failures += await removeIpvsLeftovers(targets.ipvs, log).catch((err: unknown) => {
      log.error({ err: (err as Error).message }, "cannot remove ipvs mode's leftovers");
      return 1;
    });
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
  if (deps.iptables) return { iptables: own, deleteNftTable: (family) => nft.deleteTable(family) };
  return { iptables: everyIptables(deps.runner, own), deleteNftTable: (family) => nft.deleteTable(family), ipvs: deps.runner };
}
