/**
 * `trace --mode=nftables`: the packet through the `ip`/`ip6 kube-proxy`
 * table of this node (`nft -j list table`), or through the table rendered
 * from --objects, with nftables/trace.ts; printed as the iptables trace is
 * (iptables/trace-format.ts), each matched rule named "<family> kube-proxy/<chain> #n".
 */
import { formatTrace } from '../../iptables/trace-format.ts';
import { nftFamily, TABLE_NAME, type NftTable } from '../../nftables/model.ts';
import { Nft } from '../../nftables/nft.ts';
import { tableOf } from '../../nftables/render.ts';
import { traceNft } from '../../nftables/trace.ts';
import type { IPFamily } from '../../proxier/types.ts';
import type { ProxyConfig } from '../config.ts';
import { nftDesiredFromObjects } from '../desired-nft.ts';
import type { FlagValue } from '../flags.ts';
import { readObjects } from '../sources/read-objects.ts';
import { createExecaRunner } from '../system/exec.ts';
import type { Logger } from '../../proxier/log.ts';
import type { CommandIO } from './io.ts';
import { warnIfNodeMissing } from './render.ts';
import { liveLocalAddresses, packetFor, type Destination } from './trace-packet.ts';

export async function traceNftables(
  config: ProxyConfig,
  from: { readonly src: string; readonly family: IPFamily; readonly dst: Destination },
  extra: ReadonlyMap<string, FlagValue>,
  io: CommandIO,
  log: Logger,
): Promise<number> {
  const family = nftFamily(from.family);
  const table = `${family} ${TABLE_NAME}`;
  let live: NftTable | null;
  let local: string[];
  if (config.objects) {
    const desired = nftDesiredFromObjects(await readObjects(config.objects), config, io.osHostname ? { osHostname: io.osHostname } : {});
    warnIfNodeMissing(desired, config.objects, log, 'nftables');
    const i = desired.snapshots.findIndex((s) => s.family === from.family);
    live = tableOf(desired.renders[i]!);
    local = [...desired.snapshots[i]!.node.addresses];
    io.stdout(`Ruleset: rendered from ${config.objects} for node ${desired.nodeName} (nftables, table ${table})\n`);
  } else {
    const runner = io.runner ?? createExecaRunner();
    live = await (io.nft ?? new Nft(runner)).list(family);
    local = await liveLocalAddresses(runner);
    if (live) io.stdout(`Ruleset: live (nftables, table ${table})\n`);
  }
  if (!live) {
    io.stderr(`error: there is no table ${table} on this node to trace\n`);
    return 1;
  }
  const packet = packetFor(from.src, from.dst, extra, local);
  const result = traceNft(live, packet, { localAddresses: local });
  const branches = result.branches.map((b) => ({ ...b, steps: b.steps.map((s) => ({ ...s, table })) }));
  io.stdout(formatTrace({ ...result, branches }, packet));
  return 0;
}
