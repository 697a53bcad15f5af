/**
 * `kube-proxy-ts diff [same flags and sources as the agent]`: the desired
 * ruleset (from --objects or the API server) against the live one
 * (iptables-save on this node; with --mode=nftables `nft -j list table`,
 * diff-nft.ts), per service. Exit 0 when converged, 1 when not: how an
 * operator checks that a node is converged.
 */
import { diffRulesets, formatDiff } from '../../iptables/diff.ts';
import { parseSave } from '../../iptables/parse-save.ts';
import { serviceOfChains } from '../../iptables/render.ts';
import { desiredFromObjects } from '../desired.ts';
import { probeNode } from '../../iptables/node-probe.ts';
import { nfacctTool } from '../../iptables/nfacct.ts';
import { readProcFile, type CommandRunner } from '../../proxier/exec.ts';
import { createExecaRunner } from '../system/exec.ts';
import { interfaceAddresses } from '../system/interfaces.ts';
import { diffNftables } from './diff-nft.ts';
import type { CommandIO } from './io.ts';
import { loadConfig } from './load-config.ts';
import { currentObjects } from './objects.ts';
import { warnIfNodeMissing } from './render.ts';

export async function diffCommand(argv: readonly string[], io: CommandIO): Promise<number> {
  const loaded = await loadConfig(argv, [], io);
  if (typeof loaded === 'number') return loaded;
  const { config } = loaded;
  const log = io.makeLogger(config);
  for (const warning of loaded.warnings) log.warn(warning);
  const runner = io.runner ?? createExecaRunner();
  const objects = await currentObjects(config, io, log);
  if (config.mode === 'nftables') return diffNftables(objects, config, io, log);
  const probe = await probeNode({ runner, logger: log, backend: config.iptablesBackend });
  const nfacctCounters = await nodeNfacctCounters(runner);
  const desired = desiredFromObjects(objects, config, {
    // The NodePorts where the agent puts them: on this node's interface addresses.
    hostAddresses: io.interfaceAddresses ? await io.interfaceAddresses() : await interfaceAddresses(runner),
    randomFully: probe.randomFully,
    conntrackLiberal: probe.conntrackLiberal,
    nfacctCounters,
    families: [...probe.handles.keys()],
    ...(io.osHostname ? { osHostname: io.osHostname } : {}),
  });
  warnIfNodeMissing(desired, config.objects, log, 'iptables');
  let identical = true;
  for (const r of desired.renders) {
    const ipt = probe.handles.get(r.ruleset.family)!;
    const live = parseSave(await ipt.save(['filter', 'nat']), r.ruleset.family);
    const serviceOf = serviceOfChains(r.perService);
    const d = diffRulesets(r.ruleset, live, { serviceOf: (c) => serviceOf.get(c) ?? null });
    identical &&= d.identical;
    io.stdout(formatDiff(d));
  }
  return identical ? 0 : 1;
}

/**
 * The nfacct counters the agent's rules match on this node: the node's counters (none when the tool is missing), and
 * none when the kernel has no xt_nfacct match, where the agent's probe (probeNfacctMatch) left them out. The match is
 * looked for among the kernel's registered matches, without writing a rule as the agent's probe does; an unreadable
 * list keeps the counters.
 */
export async function nodeNfacctCounters(runner: CommandRunner): Promise<ReadonlySet<string>> {
  const matches = await readProcFile(runner, '/proc/net/ip_tables_matches');
  if (matches !== null && !matches.split('\n').includes('nfacct')) return new Set();
  return new Set(
    (
      await nfacctTool(runner)
        .list()
        .catch(() => [])
    ).map((c) => c.name),
  );
}
