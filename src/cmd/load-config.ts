/**
 * Shared by every subcommand: argv -> flags (+ --config file) -> effective
 * ProxyConfig, with every problem reported as a usage error naming the flag or
 * field, before anything is touched.
 */
import { readFile } from 'node:fs/promises';
import { configFromFlags, type ProxyConfig } from '../config.ts';
import { ConfigError, lenientDecodingWarning, mergeConfig, parseConfigFile } from '../config-file.ts';
import { AGENT_FLAGS } from '../flag-table.ts';
import { FlagError, HELP, parseFlags, type FlagSpec, type FlagValue } from '../flags.ts';
import { USAGE } from '../usage.ts';
import type { CommandIO } from './io.ts';

export interface Loaded {
  readonly config: ProxyConfig;
  /** Values of the subcommand's own flags. */
  readonly extra: ReadonlyMap<string, FlagValue>;
  readonly positionals: readonly string[];
  /** Flags ignored because --config was given (upstream semantics). */
  readonly ignored: readonly string[];
  /** Agent flag values given on the command line (not the --config file's), for /flagz. */
  readonly given: ReadonlyMap<string, FlagValue>;
  /** Effective agent flag values (file merged with flags), for --write-config-to. */
  readonly values: ReadonlyMap<string, FlagValue>;
  /** --config path, or null. */
  readonly configPath: string | null;
  /** The --config file's text as it was loaded, or null. */
  readonly configText: string | null;
  /** Problems with the --config file that did not stop it (upstream's lenient decoding), for the command to log. */
  readonly warnings: readonly string[];
}

/** Returns the loaded config, or an exit code after printing the error. */
export async function loadConfig(
  argv: readonly string[],
  extraSpecs: readonly FlagSpec[],
  io: CommandIO,
  opts: { positionals?: boolean } = {},
): Promise<Loaded | number> {
  try {
    const parsed = parseCommandLine(argv, extraSpecs, opts);
    if (parsed === 'help') {
      io.stdout(USAGE);
      return 0;
    }
    const agentValues = new Map([...parsed.values].filter(([k]) => AGENT_FLAGS.some((s) => s.name === k)));
    const extra = new Map([...parsed.values].filter(([k]) => k !== HELP && !AGENT_FLAGS.some((s) => s.name === k)));
    let values = agentValues;
    let ignored: string[] = [];
    let fromFile: ReadonlyMap<string, FlagValue> = new Map();
    const warnings: string[] = [];
    const configPath = agentValues.get('config') as string | undefined;
    let text: string | null = null;
    if (configPath) {
      try {
        text = await readFile(configPath, 'utf8');
      } catch (err) {
        throw new ConfigError('', `cannot read --config ${configPath}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }
      const file = parseConfigFile(text, configPath);
      const lenient = lenientDecodingWarning(file, configPath);
      if (lenient) warnings.push(lenient);
      fromFile = file.values;
      ({ values, ignored } = mergeConfig(file.values, agentValues));
    }
    return {
      config: configFromValues(values, fromFile, configPath),
      extra,
      positionals: parsed.positionals,
      ignored,
      given: agentValues,
      values,
      configPath: configPath ?? null,
      configText: text,
      warnings,
    };
  } catch (err) {
    if (err instanceof FlagError || err instanceof ConfigError) {
      io.stderr(`error: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

/**
 * cobra's order before a command runs: every flag parsed (an unknown flag or a bad value throws FlagError), then
 * -h/--help ('help': the caller prints the usage and does nothing else), then the positional arguments.
 */
function parseCommandLine(
  argv: readonly string[],
  extraSpecs: readonly FlagSpec[],
  opts: { positionals?: boolean },
): ReturnType<typeof parseFlags> | 'help' {
  const parsed = parseFlags(argv, [...AGENT_FLAGS, ...extraSpecs]);
  if (parsed.values.get(HELP) === true) return 'help';
  if (!opts.positionals && parsed.positionals.length > 0) throw new FlagError('', `unexpected argument "${parsed.positionals[0]}"`);
  return parsed;
}

/**
 * The agent's command line checked as cobra checks it before kube-proxy's RunE prints --version
 * (verflag.PrintAndExitIfRequested): the exit code to stop with (2 for a bad flag or argument, after printing it;
 * 0 after printing the usage for -h/--help), or null when the version may be printed. The --config file is not read.
 */
export function checkCommandLine(argv: readonly string[], io: CommandIO): number | null {
  try {
    if (parseCommandLine(argv, [], {}) !== 'help') return null;
    io.stdout(USAGE);
    return 0;
  } catch (err) {
    if (!(err instanceof FlagError)) throw err;
    io.stderr(`error: ${err.message}\n`);
    return 2;
  }
}

/** configFromFlags, with an error about a value from the file naming the file and the field too. */
function configFromValues(
  values: ReadonlyMap<string, FlagValue>,
  fromFile: ReadonlyMap<string, FlagValue>,
  configPath: string | undefined,
): ProxyConfig {
  try {
    return configFromFlags(values);
  } catch (err) {
    const field = err instanceof FlagError ? AGENT_FLAGS.find((s) => s.name === err.flag)?.config : undefined;
    if (!configPath || !field || !(err instanceof FlagError) || values.get(err.flag) !== fromFile.get(err.flag)) throw err;
    throw new ConfigError(field, `${configPath}: ${field}: ${err.message}`);
  }
}
