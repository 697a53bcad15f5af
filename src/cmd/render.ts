/**
 * `kube-proxy-ts render --objects FILE [flags]`: the iptables-restore input
 * the agent would write for the objects in FILE. stdout holds only restore
 * input (IPv4 document, then IPv6); logs go to stderr.
 */
import { writeRulesetText } from '../../iptables/restore-text.ts';
import { formatProblem } from '../../proxier/types.ts';
import { desiredFromObjects } from '../desired.ts';
import { RENDER_FLAGS } from '../flag-table.ts';
import { ObjectsFileError, readObjects } from '../sources/read-objects.ts';
import type { CommandIO } from './io.ts';
import { loadConfig } from './load-config.ts';

export async function renderCommand(argv: readonly string[], io: CommandIO): Promise<number> {
  const loaded = await loadConfig(argv, RENDER_FLAGS, io);
  if (typeof loaded === 'number') return loaded;
  const { config, extra } = loaded;
  if (!config.objects) return usage(io, 'render needs --objects FILE (a manifest file or directory)');
  if (config.mode !== 'iptables') return usage(io, `render supports --mode=iptables only, not "${config.mode}"`);
  const log = io.makeLogger(config.verbosity);
  for (const warning of loaded.warnings) log.warn(warning);
  for (const flag of loaded.ignored) log.warn(`${flag} is ignored because --config is given (as upstream)`);
  for (const note of config.notImplemented) log.warn(`flag accepted but not implemented: ${note}`);

  let objects;
  try {
    objects = await readObjects(config.objects);
  } catch (err) {
    if (err instanceof ObjectsFileError) {
      io.stderr(`error: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
  const desired = desiredFromObjects(objects, config, {
    randomFully: extra.get('iptables-random-fully') !== false,
    ...(io.osHostname ? { osHostname: io.osHostname } : {}),
  });
  for (const p of desired.problems) log.warn({ object: `${p.kind} ${p.namespace}/${p.name}`, field: p.field }, `skipped: ${formatProblem(p)}`);
  if (desired.nodeMissing) {
    log.warn(
      { node: desired.nodeName },
      `no Node object named "${desired.nodeName}" in ${config.objects}: no node addresses, NodePorts match LOCAL addresses only (use --hostname-override)`,
    );
  }
  const family = extra.get('ip-family') as string | undefined;
  for (const r of desired.renders) {
    if (family && r.ruleset.family !== family) continue;
    for (const w of r.warnings) log.warn({ ipFamily: r.ruleset.family }, w);
    const services = desired.snapshots.find((s) => s.family === r.ruleset.family)?.services.length ?? 0;
    io.stdout(
      `# kube-proxy-ts ${r.ruleset.family} ruleset for node ${desired.nodeName}: ${services} service ports, local traffic detection: ${r.localDetector.description}\n`,
    );
    // In chunks: a pipe into iptables-restore starts reading while the rest is written, and the text is never held whole.
    writeRulesetText(r.ruleset, { builtins: extra.get('no-jumps') === true ? 'skip' : 'insert' }, io.stdout);
  }
  return 0;
}

export function usage(io: CommandIO, message: string): number {
  io.stderr(`error: ${message}\n`);
  return 2;
}
