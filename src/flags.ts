/**
 * Upstream kube-proxy's command-line flags as data (name, type, default, help,
 * KubeProxyConfiguration path) and a pure parser with pflag's syntax:
 * `--name=value`, `--name value`, boolean `--name` / `--name=false`, `-v=4`.
 * Unknown or invalid flags are errors that name the flag; nothing else is
 * touched before they are reported.
 */
import { formatGoDuration, parseGoDuration } from './go-duration.ts';

export type FlagType = 'string' | 'bool' | 'int' | 'float' | 'duration' | 'stringList' | 'mapStringBool';

export interface FlagSpec {
  readonly name: string;
  readonly type: FlagType;
  readonly default: string;
  readonly help: string;
  /** Dotted KubeProxyConfiguration path this flag sets, when it has one. */
  readonly config?: string;
  /** Allowed values for enumerations. */
  readonly values?: readonly string[];
  /** Inclusive range for ints and floats (ints are int32, as upstream's Int32Var, unless narrowed). */
  readonly min?: number;
  readonly max?: number;
  /** Accepted for compatibility but not implemented: a warning is logged when it is set. */
  readonly notImplemented?: string;
  /** Deprecated upstream (pflag's MarkDeprecated): a warning with upstream's text is logged when it is set. */
  readonly deprecated?: string;
  /**
   * A KubeProxyConfiguration field without a command-line flag (upstream has none either): read from
   * --config only, never parsed from argv nor listed in the help. Its name is internal; errors name its field.
   */
  readonly fileOnly?: boolean;
  readonly shorthand?: string;
}

export type FlagValue = string | boolean | number | readonly string[] | Readonly<Record<string, boolean>>;

export class FlagError extends Error {
  readonly flag: string;
  constructor(flag: string, message: string) {
    super(message);
    this.name = 'FlagError';
    this.flag = flag;
  }
}

/** Go time.ParseDuration -> milliseconds ("30s", "1m0s", "250ms", "0", "-1s"); null when malformed. */
export const parseDuration = parseGoDuration;

/** Formats milliseconds as Go's Duration.String() does ("30s", "1m0s", "250ms", "500ns"). */
export const formatDuration = formatGoDuration;

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/** Checks n against the spec's bounds (ints: also int32, as upstream's Int32Var); returns the problem or null. */
function rangeProblem(n: number, spec: FlagSpec, int: boolean): string | null {
  if (int && (n < INT32_MIN || n > INT32_MAX)) return 'out of range (int32)';
  const { min, max } = spec;
  if ((min === undefined || n >= min) && (max === undefined || n <= max)) return null;
  if (max === undefined) return `must be greater than or equal to ${min}`;
  if (min === undefined) return `must be less than or equal to ${max}`;
  return `must be between ${min} and ${max}`;
}

/** Go's strconv.ParseBool. */
function parseGoBool(raw: string): boolean | null {
  if (/^(1|t|T|TRUE|true|True)$/.test(raw)) return true;
  if (/^(0|f|F|FALSE|false|False)$/.test(raw)) return false;
  return null;
}

/** How messages name a setting: `--flag`, or the config field of a file-only one. */
export function settingLabel(spec: Pick<FlagSpec, 'name' | 'fileOnly' | 'config'>): string {
  return spec.fileOnly && spec.config ? spec.config : `--${spec.name}`;
}

export function convertFlagValue(spec: FlagSpec, raw: string): FlagValue {
  const bad = (why: string): FlagError => new FlagError(spec.name, `invalid value "${raw}" for ${settingLabel(spec)}: ${why}`);
  switch (spec.type) {
    case 'string':
      if (spec.values && !spec.values.includes(raw)) throw bad(`must be one of ${spec.values.map((v) => `"${v}"`).join(', ')}`);
      return raw;
    case 'bool': {
      const b = parseGoBool(raw);
      if (b === null) throw bad('must be true or false');
      return b;
    }
    case 'int': {
      if (!/^[-+]?\d+$/.test(raw.trim())) throw bad('must be an integer');
      const n = Number.parseInt(raw, 10);
      const problem = rangeProblem(n, spec, true);
      if (problem) throw bad(problem);
      return n;
    }
    case 'float': {
      const n = Number(raw.trim());
      if (raw.trim() === '' || !Number.isFinite(n)) throw bad('must be a number');
      const problem = rangeProblem(n, spec, false);
      if (problem) throw bad(problem);
      return n;
    }
    case 'duration': {
      const ms = parseDuration(raw);
      if (ms === null) throw bad('must be a duration such as 30s, 1m0s or 250ms');
      return ms;
    }
    case 'stringList':
      return raw === '' ? [] : raw.split(',').map((s) => s.trim());
    case 'mapStringBool': {
      const out: Record<string, boolean> = {};
      for (const part of raw.split(',').filter((p) => p.trim())) {
        // As component-base's MapStringBool: "key=value" pairs, both trimmed, the value a Go bool.
        const eq = part.indexOf('=');
        const k = eq < 0 ? '' : part.slice(0, eq).trim();
        const v = eq < 0 ? null : parseGoBool(part.slice(eq + 1).trim());
        if (!k || v === null) throw bad(`expected key=true|false pairs, got "${part}"`);
        out[k] = v;
      }
      return out;
    }
  }
}

export interface ParsedFlags {
  /** Values of flags given on the command line only (defaults are applied by the config layer). */
  readonly values: ReadonlyMap<string, FlagValue>;
  readonly positionals: readonly string[];
}

/** The value parseFlags sets for -h/--help (cobra's help flag, which every command has): true asks for the usage. */
export const HELP = 'help';

/**
 * Parses argv against the specs as pflag's FlagSet.Parse does: `--name[=value]` is a long flag; `-abc` a run of
 * shorthand flags (`-v=4`, `-v4`, `-v 4`), so a single-dash long name (`-kubeconfig=x`) is refused as pflag refuses
 * it, naming its first letter (`unknown shorthand flag: 'k' in -kubeconfig=x`). Throws FlagError naming the first bad flag.
 */
export function parseFlags(argv: readonly string[], specs: readonly FlagSpec[]): ParsedFlags {
  const byName = new Map<string, FlagSpec>();
  const byShorthand = new Map<string, FlagSpec>();
  for (const s of specs) {
    if (s.fileOnly) continue;
    byName.set(s.name, s);
    if (s.shorthand) byShorthand.set(s.shorthand, s);
  }
  const values = new Map<string, FlagValue>();
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    if (!arg.startsWith('--')) {
      i = parseShorthands(arg, argv, i, byShorthand, values);
      continue;
    }
    // parseLongArg
    const m = /^--([^=]*)(?:=(.*))?$/s.exec(arg)!;
    const name = m[1]!;
    if (name === '' || name.startsWith('-')) throw new FlagError(name, `bad flag syntax: ${arg}`);
    const spec = byName.get(name);
    if (!spec && (name === 'help' || name === 'h')) {
      // cobra's own -h/--help, on every command: the caller prints the usage once the rest has parsed.
      const on = m[2] === undefined ? true : parseGoBool(m[2]);
      if (on === null) throw new FlagError('help', `invalid argument "${m[2]}" for "--help" flag: must be true or false`);
      values.set(HELP, on);
      continue;
    }
    if (!spec) throw new FlagError(name, `unknown flag: --${name}`);
    let raw = m[2];
    if (raw === undefined) {
      if (spec.type === 'bool') raw = 'true';
      else {
        const next = argv[i + 1];
        if (next === undefined) throw new FlagError(spec.name, `flag needs an argument: --${spec.name}`);
        raw = next;
        i++;
      }
    }
    setFlag(values, spec, raw);
  }
  return { values, positionals };
}

/**
 * pflag's parseShortArg over one `-abc` argument at argv[i]: each letter a shorthand flag, the first that takes a
 * value taking the rest of the argument (`-v4`, `-v=4`) or the next one (`-v 4`). Returns the index of the last
 * argument used.
 */
function parseShorthands(
  arg: string,
  argv: readonly string[],
  i: number,
  byShorthand: ReadonlyMap<string, FlagSpec>,
  values: Map<string, FlagValue>,
): number {
  let rest = arg.slice(1);
  while (rest.length > 0) {
    const c = rest[0]!;
    const spec = byShorthand.get(c);
    if (!spec) {
      // cobra's help flag, -h.
      if (c === 'h') {
        values.set(HELP, true);
        return i;
      }
      throw new FlagError(c, `unknown shorthand flag: ${goQuoteRune(rest)} in -${rest}`);
    }
    let raw: string;
    if (rest.length > 2 && rest[1] === '=') {
      raw = rest.slice(2);
      rest = '';
    } else if (spec.type === 'bool') {
      raw = 'true';
      rest = rest.slice(1);
    } else if (rest.length > 1) {
      raw = rest.slice(1);
      rest = '';
    } else if (i + 1 < argv.length) {
      raw = argv[++i]!;
      rest = '';
    } else throw new FlagError(spec.name, `flag needs an argument: ${goQuoteRune(rest)} in -${rest}`);
    setFlag(values, spec, raw);
  }
  return i;
}

/** Go's %q of the first byte of a string, as pflag prints the shorthand it could not use: 'k', '\'', '\x00', 'Ã'. */
function goQuoteRune(s: string): string {
  const b = Buffer.from(s, 'utf8')[0]!;
  if (b === 0x27) return "'\\''";
  if (b === 0x5c) return "'\\\\'";
  if (b >= 0x20 && b < 0x7f) return `'${String.fromCharCode(b)}'`;
  const named: Readonly<Record<number, string>> = { 7: 'a', 8: 'b', 9: 't', 10: 'n', 11: 'v', 12: 'f', 13: 'r' };
  if (named[b] !== undefined) return `'\\${named[b]}'`;
  if (b < 0x20 || b === 0x7f) return `'\\x${b.toString(16).padStart(2, '0')}'`;
  // A byte of 0x80-0xff is the rune U+0080-U+00FF to %q: printable from U+00A1 on, but for the soft hyphen.
  return b >= 0xa1 && b !== 0xad ? `'${String.fromCharCode(b)}'` : `'\\u00${b.toString(16)}'`;
}

function setFlag(values: Map<string, FlagValue>, spec: FlagSpec, raw: string): void {
  const value = convertFlagValue(spec, raw);
  const previous = values.get(spec.name);
  // Lists and maps accumulate over repeated flags, as pflag's StringSlice and component-base's MapStringBool do.
  if (spec.type === 'stringList' && Array.isArray(previous)) values.set(spec.name, [...previous, ...(value as string[])]);
  else if (spec.type === 'mapStringBool' && previous !== undefined)
    values.set(spec.name, { ...(previous as Record<string, boolean>), ...(value as Record<string, boolean>) });
  else values.set(spec.name, value);
}

/** Default value of a flag, converted. */
export function flagDefault(spec: FlagSpec): FlagValue {
  return convertFlagValue({ ...spec, values: undefined as never }, spec.default);
}

export function formatFlagHelp(specs: readonly FlagSpec[]): string {
  return specs
    .filter((s) => !s.fileOnly)
    .map((s) => {
      const head = `  ${s.shorthand ? `-${s.shorthand}, ` : ''}--${s.name}${s.type === 'bool' ? '' : ` ${s.type}`}`;
      const def = s.default === '' ? '' : ` (default ${s.type === 'string' ? `"${s.default}"` : s.default})`;
      const ni = s.notImplemented ? ` [accepted, not implemented: ${s.notImplemented}]` : '';
      return `${head.padEnd(44)} ${s.help}${def}${ni}`;
    })
    .join('\n');
}

/** Go's strconv.FormatFloat(float64(f), 'g', -1, 32): the shortest digits that read back as the same float32. */
export function goFormatFloat32(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  const f = Math.fround(x);
  if (!Number.isFinite(f)) return f > 0 ? '+Inf' : '-Inf';
  if (f === 0) return Object.is(f, -0) ? '-0' : '0';
  const abs = Math.abs(f);
  let digits = '';
  let dp = 0;
  for (let p = 1; p <= 9; p++) {
    const s = abs.toExponential(p - 1);
    if (Math.fround(Number(s)) !== abs) continue;
    const [mantissa, e] = s.split('e') as [string, string];
    digits = mantissa.replace('.', '');
    dp = Number(e) + 1;
    break;
  }
  const sign = f < 0 ? '-' : '';
  const exp = dp - 1;
  // %g with the shortest digits: %e when the exponent is below -4 or at least 6.
  if (exp < -4 || exp >= 6)
    return `${sign}${digits[0]}${digits.length > 1 ? `.${digits.slice(1)}` : ''}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  if (dp <= 0) return `${sign}0.${'0'.repeat(-dp)}${digits}`;
  if (dp >= digits.length) return `${sign}${digits}${'0'.repeat(dp - digits.length)}`;
  return `${sign}${digits.slice(0, dp)}.${digits.slice(dp)}`;
}

/** encoding/csv's Writer for one record, as pflag's StringSlice writes its value (writeAsCSV), without the newline. */
function csvRecord(fields: readonly string[]): string {
  const needsQuotes = (f: string): boolean => f !== '' && (f === '\\.' || /[\n\r",]/.test(f) || /^\s/u.test(f));
  return fields.map((f) => (needsQuotes(f) ? `"${f.replace(/"/g, '""').replace(/\r\n|\r/g, '\n')}"` : f)).join(',');
}

/**
 * A flag's value as pflag's Value.String() shows it (what upstream's /flagz prints): bools `true`/`false`, durations in
 * Go's form (`15m0s`), float32s in Go's shortest form, string lists as pflag's StringSlice (`[a,b]`, `[]`), and
 * key=value maps as component-base's MapStringBool (`A=true,B=false`, sorted).
 */
export function pflagString(spec: FlagSpec, value: FlagValue): string {
  switch (spec.type) {
    case 'bool':
      return value ? 'true' : 'false';
    case 'duration':
      return formatDuration(value as number);
    case 'float':
      return goFormatFloat32(value as number);
    case 'stringList':
      return `[${csvRecord(value as readonly string[])}]`;
    case 'mapStringBool':
      return Object.entries(value as Readonly<Record<string, boolean>>)
        .map(([k, v]) => `${k}=${v}`)
        .sort()
        .join(',');
    default:
      return String(value);
  }
}

/**
 * What component-base's flagz reader (NamedFlagSetsReader over kube-proxy's command flag set) gives for a command
 * line: every flag, the value given or else its default, as pflag prints it; and cobra's `help` and verflag's
 * `version`, which every kube-proxy command line has too (false, or the agent would not be running).
 */
export function flagzFlags(specs: readonly FlagSpec[], given: ReadonlyMap<string, FlagValue>): Record<string, string> {
  const out: Record<string, string> = { help: 'false', version: 'false' };
  for (const spec of specs) {
    if (spec.fileOnly) continue;
    out[spec.name] = pflagString(spec, given.get(spec.name) ?? flagDefault(spec));
  }
  return out;
}
