/**
 * `diff --mode=nftables`: both families' desired tables against
 * `nft -j list table ip|ip6 kube-proxy`, normalised the same way
 * (nftables/normalize.ts), reported per service port
 * (nftables/diff-report.ts). Exit 0 when both tables hold exactly the
 * desired chains, rules, sets and elements (and counters, with --traffic-counters), 1 when not.
 * The NodePorts are wanted on this node's interface addresses, as the
 * agent puts them.
 */
import { reportTableDiff, formatNftDiff } from '../../nftables/diff-report.ts';
import { Nft } from '../../nftables/nft.ts';
import type { ProxyConfig } from '../config.ts';
import { nftDesiredFromObjects } from '../desired-nft.ts';
import type { ParsedObjects } from '../sources/parse-objects.ts';
import { createExecaRunner } from '../system/exec.ts';
import { interfaceAddresses } from '../system/interfaces.ts';
import type { Logger } from '../../proxier/log.ts';
import type { CommandIO } from './io.ts';
import { warnIfNodeMissing } from './render.ts';

export async function diffNftables(objects: ParsedObjects, config: ProxyConfig, io: CommandIO, log: Logger): Promise<number> {
  const hostAddresses = io.interfaceAddresses ? await io.interfaceAddresses() : await interfaceAddresses(io.runner ?? createExecaRunner());
  const desired = nftDesiredFromObjects(objects, config, { hostAddresses, ...(io.osHostname ? { osHostname: io.osHostname } : {}) });
  warnIfNodeMissing(desired, config.objects, log, 'nftables');
  const nft = io.nft ?? new Nft(io.runner ?? createExecaRunner());
  let identical = true;
  for (const [i, render] of desired.renders.entries()) {
    const report = reportTableDiff(render, await nft.list(render.family));
    identical &&= report.identical;
    io.stdout(formatNftDiff(report, desired.snapshots[i]!.family));
  }
  return identical ? 0 : 1;
}
