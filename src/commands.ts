/**
 * The subcommands as functions of (argv, io) -> exit code. Only src/main.ts
 * turns the code into process.exit. Exit codes: 0 success, 1 failure (or
 * "differs" for diff), 2 bad usage (flags, config).
 */
import { toRestoreText } from '../iptables/ruleset.ts';
import { formatProblem } from '../proxier/types.ts';
import { configFromFlags } from './config.ts';
import { desiredFromObjects } from './desired.ts';
import { AGENT_FLAGS, RENDER_FLAGS } from './flag-table.ts';
import { FlagError, formatFlagHelp, parseFlags } from './flags.ts';
import type { Logger } from './log.ts';
import { ObjectsFileError, readObjects } from './sources/read-objects.ts';

export interface CommandIO {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly makeLogger: (verbosity: number) => Logger;
  readonly osHostname?: () => string;
}

export const USAGE = `Usage:
  kube-proxy-ts [flags]                      run the node agent (issue in progress: see README)
  kube-proxy-ts render --objects FILE [flags] print the iptables-restore input for the objects in FILE
  kube-proxy-ts help                         this text

Flags:
${formatFlagHelp([...AGENT_FLAGS, ...RENDER_FLAGS])}
`;

export async function renderCommand(argv: readonly string[], io: CommandIO): Promise<number> {
  let parsed;
  let config;
  try {
    parsed = parseFlags(argv, [...AGENT_FLAGS, ...RENDER_FLAGS]);
    if (parsed.positionals.length > 0) throw new FlagError('', `unexpected argument "${parsed.positionals[0]}"`);
    const agentValues = new Map([...parsed.values].filter(([k]) => AGENT_FLAGS.some((s) => s.name === k)));
    config = configFromFlags(agentValues);
    if (!config.objects) throw new FlagError('objects', 'render needs --objects FILE (a manifest file or directory)');
    if (config.mode !== 'iptables') throw new FlagError('mode', `render supports --mode=iptables only, not "${config.mode}"`);
  } catch (err) {
    if (err instanceof FlagError) {
      io.stderr(`error: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const log = io.makeLogger(config.verbosity);
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
    randomFully: parsed.values.get('iptables-random-fully') !== false,
    ...(io.osHostname ? { osHostname: io.osHostname } : {}),
  });
  for (const p of desired.problems) log.warn({ object: `${p.kind} ${p.namespace}/${p.name}`, field: p.field }, `skipped: ${formatProblem(p)}`);
  if (desired.nodeMissing) {
    log.warn({ node: desired.nodeName }, `no Node object named "${desired.nodeName}" in ${config.objects}: no node addresses, NodePorts match LOCAL addresses only (use --hostname-override)`);
  }
  const family = parsed.values.get('ip-family') as string | undefined;
  const noJumps = parsed.values.get('no-jumps') === true;
  for (const r of desired.renders) {
    if (family && r.ruleset.family !== family) continue;
    for (const w of r.warnings) log.warn({ ipFamily: r.ruleset.family }, w);
    const services = desired.snapshots.find((s) => s.family === r.ruleset.family)?.services.length ?? 0;
    io.stdout(`# kube-proxy-ts ${r.ruleset.family} ruleset for node ${desired.nodeName}: ${services} service ports, local traffic detection: ${r.localDetector.description}\n`);
    io.stdout(toRestoreText(r.ruleset, { builtins: noJumps ? 'skip' : 'insert' }));
  }
  return 0;
}

export async function runCli(argv: readonly string[], io: CommandIO): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'render':
      return renderCommand(rest, io);
    case 'help':
    case '--help':
    case '-h':
      io.stdout(USAGE);
      return 0;
    default:
      io.stderr(`error: the node agent is not available yet; use "kube-proxy-ts render --objects FILE". See "kube-proxy-ts help".\n`);
      return 2;
  }
}
