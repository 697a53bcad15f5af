/**
 * Subcommand dispatch. Each subcommand is a function of (argv, io) -> exit
 * code (src/cmd/); only src/main.ts turns the code into process.exit.
 * Exit codes: 0 success, 1 failure (or "differs" for diff), 2 bad usage.
 */
import type { CommandIO } from './cmd/io.ts';
import { USAGE } from './usage.ts';
import { versionRequest } from './version.ts';

export type { CommandIO };
export { USAGE };

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
      io.stdout(USAGE);
      return 0;
    default:
      // `--help` with more after it goes through the flags like any other: cobra parses them all before it honours
      // help, so `--help --bogus` is an unknown flag.
      if ((cmd === '--help' || cmd === '-h') && rest.length === 0) {
        io.stdout(USAGE);
        return 0;
      }
      if (cmd !== undefined && !cmd.startsWith('-')) {
        io.stderr(`error: unknown command "${cmd}". See "kube-proxy-ts help".\n`);
        return 2;
      }
      {
        // component-base's verflag: --version prints and exits before the --config file or anything else is read.
        const { print, rest, error } = versionRequest(argv);
        if (error) {
          io.stderr(`error: ${error}\n`);
          return 2;
        }
        if (print !== null) {
          // cobra parses every flag and honours -h before kube-proxy's RunE prints the version.
          const stop = (await import('./cmd/load-config.ts')).checkCommandLine(rest, io);
          if (stop !== null) return stop;
          io.stdout(print);
          return 0;
        }
        return (await import('./cmd/run.ts')).runCommand(rest, io);
      }
  }
}
