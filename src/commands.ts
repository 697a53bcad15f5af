/**
 * Subcommand dispatch. Each subcommand is a function of (argv, io) -> exit
 * code (src/cmd/); only src/main.ts turns the code into process.exit.
 * Exit codes: 0 success, 1 failure (or "differs" for diff), 2 bad usage.
 */
import type { CommandIO } from './cmd/io.ts';
import { AGENT_FLAGS, RENDER_FLAGS, TOP_FLAGS } from './flag-table.ts';
import { formatFlagHelp } from './flags.ts';
import { versionRequest } from './version.ts';

export type { CommandIO };

export const USAGE = `Usage:
  kube-proxy-ts [flags]                       run the node agent (--mode iptables, nftables or userspace)
  kube-proxy-ts --cleanup                     remove every kube-proxy rule (any mode, upstream's too) and exit
  kube-proxy-ts --init-only                   set the node's sysctls (conntrack, route_localnet) and exit
  kube-proxy-ts --version                     print the version and exit
  kube-proxy-ts render --objects FILE [flags] print the iptables-restore input for the objects in FILE
  kube-proxy-ts diff [flags]                  compare the desired rules with the live ones; exit 0 when converged
  kube-proxy-ts trace --src IP --dst IP:PORT[/PROTO] [--objects FILE]
                                              run a packet through the live (or rendered) rules
  kube-proxy-ts top [--interval 2s] [--iterations N] [--ip-family IPv4|IPv6]
                                              live packets per second per service endpoint, from the KUBE-SEP counters
  kube-proxy-ts help                          this text

Flags:
${formatFlagHelp(AGENT_FLAGS)}

render only:
${formatFlagHelp(RENDER_FLAGS)}

top only:
${formatFlagHelp(TOP_FLAGS)}
`;

export async function runCli(argv: readonly string[], io: CommandIO): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    // Loaded on demand: render and help start without the agent's dependencies.
    case 'render':
      return (await import('./cmd/render.ts')).renderCommand(rest, io);
    case 'diff':
      return (await import('./cmd/diff.ts')).diffCommand(rest, io);
    case 'trace':
      return (await import('./cmd/trace.ts')).traceCommand(rest, io);
    case 'top':
      return (await import('./cmd/top.ts')).topCommand(rest, io);
    case 'help':
    case '--help':
    case '-h':
      io.stdout(USAGE);
      return 0;
    default:
      if (cmd !== undefined && !cmd.startsWith('-')) {
        io.stderr(`error: unknown command "${cmd}". See "kube-proxy-ts help".\n`);
        return 2;
      }
      {
        // component-base's verflag: --version prints and exits before anything else is looked at.
        const { print, rest, error } = versionRequest(argv);
        if (error) {
          io.stderr(`error: ${error}\n`);
          return 2;
        }
        if (print !== null) {
          io.stdout(print);
          return 0;
        }
        return (await import('./cmd/run.ts')).runCommand(rest, io);
      }
  }
}
