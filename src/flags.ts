/**
 * Upstream kube-proxy's command-line flags as data (name, type, default, help,
 * KubeProxyConfiguration path) and a pure parser with pflag's syntax:
 * `--name=value`, `--name value`, boolean `--name` / `--name=false`, `-v=4`.
 * Unknown or invalid flags are errors that name the flag; nothing else is
 * touched before they are reported.
 */

export type FlagType = 'string' | 'bool' | 'int' | 'duration' | 'stringList' | 'mapStringBool';

export interface FlagSpec {
  readonly name: string;
  readonly type: FlagType;
  readonly default: string;
  readonly help: string;
  /** Dotted KubeProxyConfiguration path this flag sets, when it has one. */
  readonly config?: string;
  /** Allowed values for enumerations. */
  readonly values?: readonly string[];
  /** Inclusive range for ints. */
  readonly min?: number;
  readonly max?: number;
  /** Accepted for compatibility but not implemented: a warning is logged when it is set. */
  readonly notImplemented?: string;
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

const UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go time.ParseDuration -> milliseconds ("30s", "1m0s", "250ms", "0"); null when malformed. */
export function parseDuration(text: string): number | null {
  const s = text.trim();
  if (s === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    total += Number(m[1]) * UNITS[m[2]!]!;
    consumed = re.lastIndex;
  }
  return consumed === s.length && consumed > 0 ? total : null;
}

/** Formats milliseconds the way Go prints durations in help text ("30s", "1m0s", "250ms"). */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  if (ms < 1000) return `${ms}ms`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = (ms % 60_000) / 1000;
  if (h) return `${h}h${m}m${s}s`;
  if (m) return `${m}m${s}s`;
  return `${s}s`;
}

export function convertFlagValue(spec: FlagSpec, raw: string): FlagValue {
  const bad = (why: string): FlagError => new FlagError(spec.name, `invalid value "${raw}" for --${spec.name}: ${why}`);
  switch (spec.type) {
    case 'string':
      if (spec.values && !spec.values.includes(raw)) throw bad(`must be one of ${spec.values.map((v) => `"${v}"`).join(', ')}`);
      return raw;
    case 'bool':
      if (/^(true|1|t|TRUE|True)$/.test(raw)) return true;
      if (/^(false|0|f|FALSE|False)$/.test(raw)) return false;
      throw bad('must be true or false');
    case 'int': {
      if (!/^-?\d+$/.test(raw.trim())) throw bad('must be an integer');
      const n = Number.parseInt(raw, 10);
      if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
        throw bad(`must be between ${spec.min} and ${spec.max}`);
      }
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
        const [k, v] = part.split('=');
        if (!k || (v !== 'true' && v !== 'false')) throw bad(`expected key=true|false pairs, got "${part}"`);
        out[k.trim()] = v === 'true';
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

/** Parses argv against the specs. Throws FlagError naming the first bad flag. */
export function parseFlags(argv: readonly string[], specs: readonly FlagSpec[]): ParsedFlags {
  const byName = new Map<string, FlagSpec>();
  for (const s of specs) {
    byName.set(s.name, s);
    if (s.shorthand) byName.set(s.shorthand, s);
  }
  const values = new Map<string, FlagValue>();
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    const m = /^--?([^=]+)(?:=(.*))?$/s.exec(arg);
    if (!m || arg === '-') {
      positionals.push(arg);
      continue;
    }
    const name = m[1]!;
    const spec = byName.get(name);
    if (!spec) throw new FlagError(name, `unknown flag: ${arg.split('=')[0]}`);
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
    const value = convertFlagValue(spec, raw);
    const previous = values.get(spec.name);
    // Lists accumulate over repeated flags, as pflag's StringSlice does.
    values.set(spec.name, spec.type === 'stringList' && Array.isArray(previous) ? [...previous, ...(value as string[])] : value);
  }
  return { values, positionals };
}

/** Default value of a flag, converted. */
export function flagDefault(spec: FlagSpec): FlagValue {
  return convertFlagValue({ ...spec, values: undefined as never }, spec.default);
}

export function formatFlagHelp(specs: readonly FlagSpec[]): string {
  return specs
    .map((s) => {
      const head = `  ${s.shorthand ? `-${s.shorthand}, ` : ''}--${s.name}${s.type === 'bool' ? '' : ` ${s.type}`}`;
      const def = s.default === '' ? '' : ` (default ${s.type === 'string' ? `"${s.default}"` : s.default})`;
      const ni = s.notImplemented ? ` [accepted, not implemented: ${s.notImplemented}]` : '';
      return `${head.padEnd(44)} ${s.help}${def}${ni}`;
    })
    .join('\n');
}
