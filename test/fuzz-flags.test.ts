/**
 * Command lines as installers and operators write them, gone wrong: a few
 * of the agent's flags (upstream's names), each with a random value in any
 * of pflag's forms (--flag=value, --flag value, a bare boolean), through
 * the loader every command uses (loadConfig). Each command line loads, or
 * exits 2 with an error that names one of its flags; none throws.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../proxier/log.ts';
import { loadConfig } from '../src/cmd/load-config.ts';
import { AGENT_FLAGS } from '../src/flag-table.ts';
import { shortReporter } from './fuzz-oracle.ts';

const SEED = 20261207;
const RUNS = 600;
/** Flags a command line can carry (not --config: the config property covers files). */
const FLAGS = AGENT_FLAGS.filter((f) => !f.fileOnly && f.name !== 'config');

const value = fc.oneof(
  fc.constantFrom(
    '',
    '0',
    '-1',
    '1',
    'true',
    'false',
    '30s',
    '0s',
    '-5s',
    '1h',
    '0.5ns',
    '10.0.0.0/8',
    'fd00::/64,10.0.0.0/8',
    'bad/99',
    '0.0.0.0:10256',
    '[::]:0',
    '127.0.0.1',
    'primary',
    'iptables',
    'nftables',
    'ipvs',
    'AllBeta=true',
    'X=1',
    '=',
    '--',
  ),
  fc.integer({ min: -70_000, max: 5_000_000_000 }).map(String),
  fc.string({ maxLength: 16 }),
);

const argument = fc.record({ flag: fc.constantFrom(...FLAGS), form: fc.constantFrom('eq', 'space', 'bare'), value });

describe('command lines with random flag values (upstream pflag parsing and validation)', () => {
  it(`load, or exit 2 naming a flag; never throw (${RUNS} command lines, seed ${SEED})`, async () => {
    const stats = { loaded: 0, refused: 0 };
    await fc.assert(
      fc.asyncProperty(fc.array(argument, { minLength: 1, maxLength: 4 }), async (args) => {
        const argv = args.flatMap(({ flag, form, value: v }) =>
          form === 'eq' ? [`--${flag.name}=${v}`] : form === 'space' ? [`--${flag.name}`, v] : [`--${flag.name}`],
        );
        const err: string[] = [];
        const r = await loadConfig(
          argv,
          [],
          { stdout: () => undefined, stderr: (t) => void err.push(t), makeLogger: () => silentLogger() },
          { positionals: true },
        );
        if (typeof r !== 'number') return void stats.loaded++;
        stats.refused++;
        expect(r).toBe(2);
        const text = err.join('');
        // A value after a boolean flag is an argument of its own: "-5s" is then a run of unknown shorthands, named as
        // written (pflag: unknown shorthand flag: '5' in -5s), and "--x=1" an unknown flag named without its value.
        const unknown = /unknown (?:flag: (--[^=\s]*)|shorthand flag: '(?:[^'\\]|\\.[^']*)' in (-.*))$/m.exec(text);
        const named =
          (unknown !== null && argv.some((a) => a === unknown[2] || (unknown[1] !== undefined && a.split('=')[0] === unknown[1]))) ||
          args.some(({ flag }) => text.includes(flag.name) || (flag.config !== undefined && text.includes(flag.config)));
        if (!named) throw new Error(`${JSON.stringify(argv)}: the error names none of its flags: ${text}`);
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true, reporter: shortReporter },
    );
    console.log(`fuzz (flags): ${RUNS} command lines, ${stats.loaded} loaded, ${stats.refused} refused`);
    expect(stats.refused).toBeGreaterThan(0);
    expect(stats.loaded).toBeGreaterThan(0);
  }, 60_000);
});
