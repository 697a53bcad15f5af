/**
 * `kube-proxy-ts trace --src IP --dst IP:PORT[/PROTO]`: runs a packet through
 * the live ruleset of this node (iptables-save, every table, with the node's
 * routes for `-o` and the input interface), or through the rendered one
 * when --objects is given, and prints which endpoints it can reach (with
 * probabilities), whether it is masqueraded, rejected or dropped, and the
 * rules it matched. The same tracer the test suite uses. With
 * --mode=nftables the table `ip`/`ip6 kube-proxy` instead (trace-nft.ts).
 */
import { parseSave } from '../../iptables/parse-save.ts';
import { trace } from '../../iptables/trace.ts';
import { formatTrace } from '../../iptables/trace-format.ts';
import type { Ruleset } from '../../iptables/ruleset.ts';
import { parseIP } from '../../proxier/ip.ts';
import { desiredFromObjects } from '../desired.ts';
import type { FlagSpec } from '../flags.ts';
import { probeNode } from '../../iptables/node-probe.ts';
import { createExecaRunner } from '../system/exec.ts';
import type { CommandIO } from './io.ts';
import { loadConfig } from './load-config.ts';
import { usage, warnIfNodeMissing } from './render.ts';
import { traceNftables } from './trace-nft.ts';
import { liveLocalAddresses, liveRoutes, packetFor, parseDestination } from './trace-packet.ts';
import { localAddressTest } from '../../iptables/trace-match.ts';
import { routeLookup, type Route } from '../../proxier/route-table.ts';
import { readObjects } from '../sources/read-objects.ts';

export const TRACE_FLAGS: readonly FlagSpec[] = [
  { name: 'src', type: 'string', default: '', help: 'trace: source IP of the packet' },
  { name: 'dst', type: 'string', default: '', help: 'trace: destination IP:PORT[/TCP|UDP|SCTP] (IPv6 as [ip]:port)' },
  {
    name: 'origin',
    type: 'string',
    default: '',
    values: ['', 'local', 'external'],
    help: 'trace: generated on the node (local) or arriving (external); default: local when --src is a node address',
  },
  { name: 'in-interface', type: 'string', default: '', help: 'trace: interface the packet arrives on (for -i matches)' },
];

export async function traceCommand(argv: readonly string[], io: CommandIO): Promise<number> {
  const loaded = await loadConfig(argv, TRACE_FLAGS, io);
  if (typeof loaded === 'number') return loaded;
  const { config, extra } = loaded;
  const src = parseIP((extra.get('src') as string | undefined) ?? '');
  if (!src) return usage(io, 'trace needs --src IP (an IP address)');
  const dst = parseDestination((extra.get('dst') as string | undefined) ?? '');
  if (!dst) return usage(io, 'trace needs --dst IP:PORT[/PROTO], e.g. 10.96.0.10:80/TCP or [fd00::10]:53/UDP');
  if ((parseIP(dst.ip)?.family ?? '') !== src.family) return usage(io, `--src ${src.text} and --dst ${dst.ip} are of different IP families`);
  const log = io.makeLogger(config);
  for (const warning of loaded.warnings) log.warn(warning);
  if (config.mode === 'nftables') return traceNftables(config, { src: src.text, family: src.family, dst }, extra, io, log);

  let ruleset: Ruleset | undefined;
  let local: string[];
  let routes: Route[] | undefined;
  if (config.objects) {
    const desired = desiredFromObjects(await readObjects(config.objects), config, {
      randomFully: true,
      ...(io.osHostname ? { osHostname: io.osHostname } : {}),
    });
    warnIfNodeMissing(desired, config.objects, log, 'iptables');
    ruleset = desired.renders.find((r) => r.ruleset.family === src.family)?.ruleset;
    local = [...(desired.snapshots[0]?.node.addresses ?? [])];
    io.stdout(`Ruleset: rendered from ${config.objects} for node ${desired.nodeName}\n`);
  } else {
    const runner = io.runner ?? createExecaRunner();
    const probe = await probeNode({ runner, logger: log, backend: config.iptablesBackend });
    const ipt = probe.handles.get(src.family);
    // Every table: other tools' raw and mangle rules act on the packet before and between kube-proxy's.
    if (ipt) ruleset = parseSave(await ipt.save(), src.family);
    local = await liveLocalAddresses(runner);
    routes = await liveRoutes(runner, src.family);
    io.stdout(`Ruleset: live (${probe.backend} backend)\n`);
  }
  if (!ruleset) {
    io.stderr(`error: no ${src.family} ruleset to trace\n`);
    return 1;
  }
  const packet = packetFor(src.text, dst, extra, local, routes && routeLookup(routes, localAddressTest(local)));
  io.stdout(formatTrace(trace(ruleset, packet, { localAddresses: local, ...(routes ? { routes } : {}) }), packet));
  return 0;
}
