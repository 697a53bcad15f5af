/**
 * `kube-proxy-ts render --objects FILE [flags]`: the rules the agent would
 * write for the objects in FILE: iptables-restore input (IPv4 document, then
 * IPv6), or with --mode=nftables `nft -f` input (render-nft.ts). stdout holds
 * only that input; logs go to stderr.
 */
import { renderRulesetStreamed } from '../../iptables/render.ts';
import { writeRulesetText } from '../../iptables/restore-text.ts';
import { formatProblem } from '../../proxier/types.ts';
import type { Logger } from '../../proxier/log.ts';
import type { IPFamily } from '../../proxier/types.ts';
import { missingNodeMessage, renderOptionsFrom, snapshotsFromObjects, type DesiredSnapshots } from '../desired.ts';
import { nftDesiredFromObjects } from '../desired-nft.ts';
import { RENDER_FLAGS } from '../flag-table.ts';
import type { ParsedObjects } from '../sources/parse-objects.ts';
import { ObjectsFileError, readObjects } from '../sources/read-objects.ts';
import type { CommandIO } from './io.ts';
import { nftRenderText } from './render-nft.ts';
import { loadConfig } from './load-config.ts';

export async function renderCommand(argv: readonly string[], io: CommandIO): Promise<number> {
  const loaded = await loadConfig(argv, RENDER_FLAGS, io);
  if (typeof loaded === 'number') return loaded;
  const { config, extra } = loaded;
  if (!config.objects) return usage(io, 'render needs --objects FILE (a manifest file or directory)');
  if (config.mode === 'userspace') return usage(io, 'render supports --mode=iptables and --mode=nftables, not "userspace"');
  const iptablesOnly = ['iptables-random-fully', 'no-jumps'].filter((f) => extra.has(f));
  if (config.mode === 'nftables' && iptablesOnly.length > 0) return usage(io, `--${iptablesOnly[0]} applies to --mode=iptables only`);
  const log = io.makeLogger(config);
  for (const warning of loaded.warnings) log.warn(warning);
  for (const flag of loaded.ignored) log.warn(`${flag} is ignored because --config is given (as upstream)`);
  for (const note of config.deprecated) log.warn(note);
  for (const note of config.notImplemented) log.warn(`flag accepted but not implemented: ${note}`);

  let objects: ParsedObjects | null;
  try {
    objects = await readObjects(config.objects);
  } catch (err) {
    if (err instanceof ObjectsFileError) {
      io.stderr(`error: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
  const family = extra.get('ip-family') as IPFamily | undefined;
  if (config.mode === 'nftables') {
    const desired = nftDesiredFromObjects(objects, config, io.osHostname ? { osHostname: io.osHostname } : {});
    logDesired(desired, config.objects, log, 'nftables');
    io.stdout(nftRenderText(desired, family ?? null, log));
    return 0;
  }
  const desired = snapshotsFromObjects(objects, config, io.osHostname ? { osHostname: io.osHostname } : {});
  objects = null; // the parsed file is garbage from here on: the collector need not trace it while the rules are rendered
  logDesired(desired, config.objects, log);
  const options = renderOptionsFrom(config, { randomFully: extra.get('iptables-random-fully') !== false });
  for (const snapshot of desired.snapshots) {
    if (family && snapshot.family !== family) continue;
    // Each service's chains are rendered as they are written: a pipe into iptables-restore reads the start of the
    // text while the rest is rendered, and the text is never held whole (iptables/render.ts renderRulesetStreamed).
    const r = renderRulesetStreamed(snapshot, options);
    for (const w of r.warnings) log.warn({ ipFamily: snapshot.family }, w);
    io.stdout(
      `# kube-proxy-ts ${snapshot.family} ruleset for node ${desired.nodeName}: ${snapshot.services.length} service ports, local traffic detection: ${r.localDetector.description}\n`,
    );
    writeRulesetText(r.topLevel, { builtins: extra.get('no-jumps') === true ? 'skip' : 'insert' }, io.stdout, r.streamed);
  }
  return 0;
}

/** Skipped objects and a missing Node, as `render` reports them. */
export function logDesired(desired: DesiredSnapshots, objectsPath: string, log: Logger, mode: 'iptables' | 'nftables' = 'iptables'): void {
  for (const p of desired.problems) log.warn({ object: `${p.kind} ${p.namespace}/${p.name}`, field: p.field }, `skipped: ${formatProblem(p)}`);
  warnIfNodeMissing(desired, objectsPath, log, mode);
}

/** A missing Node, as every command that builds the desired rules reports it (the objects came from `objectsPath`, or the API server). */
export function warnIfNodeMissing(
  desired: Pick<DesiredSnapshots, 'nodeMissing' | 'nodeName'>,
  objectsPath: string,
  log: Logger,
  mode: 'iptables' | 'nftables',
): void {
  if (!desired.nodeMissing) return;
  const where = objectsPath ? `in ${objectsPath}` : "among the API server's Nodes";
  log.warn({ node: desired.nodeName }, `${missingNodeMessage(desired.nodeName, where, mode)} (use --hostname-override)`);
}

export function usage(io: CommandIO, message: string): number {
  io.stderr(`error: ${message}\n`);
  return 2;
}
