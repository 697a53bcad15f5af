/**
 * Shared by every subcommand: argv -> flags (+ --config file) -> effective
 * ProxyConfig, with every problem reported as a usage error naming the flag or
 * field, before anything is touched.
 */
import { readFile } from 'node:fs/promises';
import { configFromFlags, type ProxyConfig } from '../config.ts';
import { ConfigError, mergeConfig, parseConfigFile } from '../config-file.ts';
import { AGENT_FLAGS } from '../flag-table.ts';
import { FlagError, parseFlags, type FlagSpec, type FlagValue } from '../flags.ts';
import type { CommandIO } from './io.ts';

export interface Loaded {
  readonly config: ProxyConfig;
  /** Values of the subcommand's own flags. */
  readonly extra: ReadonlyMap<string, FlagValue>;
  readonly positionals: readonly string[];
  /** Flags ignored because --config was given (upstream semantics). */
  readonly ignored: readonly string[];
  /** Effective agent flag values (file merged with flags), for --write-config-to. */
  readonly values: ReadonlyMap<string, FlagValue>;
  /** --config path, or null. */
  readonly configPath: string | null;
}

/** Returns the loaded config, or an exit code after printing the error. */
export async function loadConfig(argv: readonly string[], extraSpecs: readonly FlagSpec[], io: CommandIO, opts: { positionals?: boolean } = {}): Promise<Loaded | number> {
  try {
    const parsed = parseFlags(argv, [...AGENT_FLAGS, ...extraSpecs]);
    if (!opts.positionals && parsed.positionals.length > 0) throw new FlagError('', `unexpected argument "${parsed.positionals[0]}"`);
    const agentValues = new Map([...parsed.values].filter(([k]) => AGENT_FLAGS.some((s) => s.name === k)));
    const extra = new Map([...parsed.values].filter(([k]) => !AGENT_FLAGS.some((s) => s.name === k)));
    let values = agentValues;
    let ignored: string[] = [];
    const configPath = agentValues.get('config') as string | undefined;
    if (configPath) {
      let text: string;
      try {
        text = await readFile(configPath, 'utf8');
      } catch (err) {
        throw new ConfigError('', `cannot read --config ${configPath}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }
      ({ values, ignored } = mergeConfig(parseConfigFile(text, configPath), agentValues));
    }
    return { config: configFromFlags(values), extra, positionals: parsed.positionals, ignored, values, configPath: configPath ?? null };
  } catch (err) {
    if (err instanceof FlagError || err instanceof ConfigError) {
      io.stderr(`error: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}
