/**
 * --config FILE: a KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1)
 * decoded as upstream's loadConfig does: strictly first; when only unknown or
 * duplicate fields make that fail (files written for older versions carry
 * conntrack.max, resourceContainer, ...), leniently, with a warning naming
 * every such field. A wrong kind, version or value type is an error naming
 * the field. Values are mapped onto the flag table through each flag's
 * `config` path, so the file and the flags share one set of conversions and
 * validations.
 *
 * Precedence, as upstream: with --config, the file replaces the flags, except
 * --hostname-override and the logging flag -v, which still win (kube-proxy-ts
 * additionally warns about every other flag given alongside --config). Flags
 * that exist only in kube-proxy-ts (--objects, --iptables-backend) always apply.
 */
import { defineScalarTag, loadAll, mapTag, mergeTag, NOT_RESOLVED, Schema, seqTag, strTag, type LoadOptions } from 'js-yaml';
import { quantityBytes, type ProxyConfig } from './config.ts';
import { describeValue, typeProblem, UNMAPPED_FIELDS } from './config-schema.ts';
import { AGENT_FLAGS } from './flag-table.ts';
import { convertFlagValue, flagDefault, formatDuration, settingLabel, type FlagSpec, type FlagValue } from './flags.ts';
import { parseGoDurationNs } from './go-duration.ts';
import { HEALTHZ_PORT, METRICS_PORT } from './host-port.ts';
import { parseIP } from '../proxier/ip.ts';

export const CONFIG_API_VERSION = 'kubeproxy.config.k8s.io/v1alpha1';

export class ConfigError extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(message);
    this.name = 'ConfigError';
    this.field = field;
  }
}

/**
 * Fields whose zero value means "the default", as upstream's v1alpha1
 * defaulting (SetDefaults_KubeProxyConfiguration) fills them: kubeadm writes
 * every field, zeros included (syncPeriod: 0s, healthzBindAddress: "", ...).
 */
const ZERO_MEANS_DEFAULT = new Set([
  'bind-address',
  'healthz-bind-address',
  'metrics-bind-address',
  'iptables-sync-period',
  'iptables-min-sync-period',
  'nftables-sync-period',
  'nftables-min-sync-period',
  'udp-timeout',
  'config-sync-period',
  'kube-api-content-type',
  'kube-api-qps',
  'kube-api-burst',
  'logging-format',
]);

/** Zero as upstream's defaulting sees it: "", 0, or a duration that is 0 ns ("0s", "0.5ns"). */
function isZero(spec: FlagSpec, value: unknown): boolean {
  if (value === '' || value === 0) return true;
  return spec.type === 'duration' && typeof value === 'string' && parseGoDurationNs(value) === 0n;
}

/** Flags whose command-line value wins over the file: --hostname-override, and the logging flags (upstream copyLogsFromFlags). */
export const FLAGS_OVER_CONFIG = new Set([
  'hostname-override',
  'v',
  'logging-format',
  'log-flush-frequency',
  'vmodule',
  'log-text-split-stream',
  'log-text-info-buffer-size',
  'log-json-split-stream',
  'log-json-info-buffer-size',
]);

/**
 * Flags without a config field that upstream still ignores when --config is given: the deprecated ports (applied
 * by Complete only without a file) and ipvs's (processV1Alpha1Flags, or the config the file replaces).
 */
const ignoredWithConfig = (name: string): boolean => name === 'healthz-port' || name === 'metrics-port' || name.startsWith('ipvs-');

export interface ParsedConfigFile {
  /** Flag name -> value for every mapped field set in the file. */
  readonly values: Map<string, FlagValue>;
  /** Fields upstream's strict decoding refuses and its lenient v1alpha1 decoding drops (dotted paths). */
  readonly unknownFields: readonly string[];
  /** YAML keys given twice (strict decoding refuses them; leniently the last one wins). */
  readonly duplicateKeys: readonly string[];
}

/**
 * Decodes a KubeProxyConfiguration as upstream's Options.loadConfig does:
 * wrong kind, version or value types are fatal (ConfigError naming the
 * field); unknown and duplicate fields fail strict decoding only, and the
 * lenient fallback goes on without them (the caller warns, see
 * lenientDecodingWarning).
 */
export function parseConfigFile(text: string, source: string): ParsedConfigFile {
  const { doc, duplicateKeys } = loadYaml(text, source);
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new ConfigError('', `${source}: expected a KubeProxyConfiguration object`);
  const obj = doc as Record<string, unknown>;
  const infinite = nonFinite(obj, '');
  if (infinite)
    throw new ConfigError(
      infinite.path,
      `${source}: ${infinite.path}: ${String(infinite.value)} (.nan or .inf) has no JSON form, and upstream's decoder converts the file to JSON (sigs.k8s.io/yaml YAMLToJSON)`,
    );
  if (obj['kind'] !== 'KubeProxyConfiguration')
    throw new ConfigError('kind', `${source}: kind must be KubeProxyConfiguration, got ${describeValue(obj['kind'])}`);
  if (obj['apiVersion'] !== CONFIG_API_VERSION)
    throw new ConfigError('apiVersion', `${source}: apiVersion must be ${CONFIG_API_VERSION}, got ${describeValue(obj['apiVersion'])}`);

  // The `nftables:` section counts only in nftables mode (settingNames in config.ts); otherwise its types are checked.
  const nftables = obj['mode'] === 'nftables';
  const byPath = new Map<string, FlagSpec>();
  for (const spec of AGENT_FLAGS) if (spec.config && !byPath.has(spec.config) && (!spec.fileOnly || nftables)) byPath.set(spec.config, spec);

  const values = new Map<string, FlagValue>();
  const unknownFields: string[] = [];
  const visit = (value: unknown, path: string): void => {
    if (path === 'logging.vmodule') {
      const vmodule = vmoduleFromFile(value, source);
      if (vmodule !== '') values.set('vmodule', vmodule);
      return;
    }
    const buffered = /^logging\.options\.(text|json)\.infoBufferSize$/.exec(path);
    if (buffered) {
      // A resource.Quantity: a string ("64Ki") or a number.
      if (value === null || value === undefined) return;
      if ((typeof value !== 'string' && typeof value !== 'number') || quantityBytes(String(value)) === null)
        throw new ConfigError(path, `${source}: ${path}: expected a quantity such as "0", 512 or "64Ki", got ${describeValue(value)}`);
      values.set(`log-${buffered[1]}-info-buffer-size`, String(value));
      return;
    }
    if (path === 'logging.flushFrequency') {
      values.set('log-flush-frequency', flushFrequencyFromFile(value, path, source));
      return;
    }
    const spec = byPath.get(path);
    if (spec) {
      values.set(spec.name, fromFile(spec, value, path, source));
      return;
    }
    const type = UNMAPPED_FIELDS[path];
    if (type === undefined) {
      unknownFields.push(path);
      return;
    }
    const want = typeProblem(type, value);
    if (want) throw new ConfigError(path, `${source}: ${path}: expected ${want}, got ${describeValue(value)}${booleanNote(value)}`);
    if (type === 'duration' && typeof value === 'string' && parseGoDurationNs(value) === null) {
      throw new ConfigError(path, `${source}: ${path}: invalid duration "${value}"`);
    }
    if (type === 'object' && value) for (const [k, v] of Object.entries(value)) visit(v, `${path}.${k}`);
  };
  for (const [k, v] of Object.entries(obj)) visit(v, k);
  defaultServerAddresses(obj, values);
  // Upstream's defaults for what the section leaves out: the file, not the iptables flags, decides in nftables mode.
  if (nftables)
    for (const spec of AGENT_FLAGS) if (spec.fileOnly && !values.has(spec.name)) values.set(spec.name, convertFlagValue(spec, spec.default));
  return { values, unknownFields, duplicateKeys };
}

/**
 * SetDefaults_KubeProxyConfiguration's getDefaultAddresses: a file whose bindAddress is IPv6 (kubeadm writes '::' on
 * an IPv6 control plane) and that leaves healthzBindAddress or metricsBindAddress out or "" serves them on [::]:10256
 * and [::1]:10249, not on the IPv4 defaults. Only the file's bindAddress counts (the flags' defaults are fixed before
 * --bind-address is read), and an IPv4-mapped address is IPv4, as Go's To4 says.
 */
function defaultServerAddresses(obj: Readonly<Record<string, unknown>>, values: Map<string, FlagValue>): void {
  const bind = obj['bindAddress'];
  if (typeof bind !== 'string' || bind === '' || parseIP(bind)?.family === 'IPv4') return;
  const unset = (v: unknown): boolean => v === undefined || v === null || v === '';
  if (unset(obj['healthzBindAddress'])) values.set('healthz-bind-address', `[::]:${HEALTHZ_PORT}`);
  if (unset(obj['metricsBindAddress'])) values.set('metrics-bind-address', `[::1]:${METRICS_PORT}`);
}

/**
 * logging.vmodule (component-base VModuleConfiguration: a list of {filePattern, verbosity}) as --vmodule's
 * "pattern=N,..."; checked as upstream decodes it (verbosity a uint32) and logsapi.Validate checks it.
 */
function vmoduleFromFile(value: unknown, source: string): string {
  const path = 'logging.vmodule';
  if (value === null || value === undefined) return '';
  if (!Array.isArray(value))
    throw new ConfigError(path, `${source}: ${path}: expected a list of {filePattern, verbosity}, got ${describeValue(value)}`);
  return value
    .map((item: unknown, i) => {
      const at = `${path}[${i}]`;
      if (typeof item !== 'object' || item === null || Array.isArray(item))
        throw new ConfigError(path, `${source}: ${at}: expected {filePattern, verbosity}, got ${describeValue(item)}`);
      const { filePattern = '', verbosity = 0 } = item as Record<string, unknown>;
      if (typeof filePattern !== 'string')
        throw new ConfigError(path, `${source}: ${at}.filePattern: expected a string, got ${describeValue(filePattern)}${booleanNote(filePattern)}`);
      if (typeof verbosity !== 'number' || !Number.isInteger(verbosity) || verbosity < 0 || verbosity > 2 ** 32 - 1)
        throw new ConfigError(path, `${source}: ${at}.verbosity: expected a non-negative integer, got ${describeValue(verbosity)}`);
      if (filePattern === '') throw new ConfigError(path, `${source}: ${at}.filePattern: Required value: File pattern must not be empty`);
      if (/[=,]/.test(filePattern))
        throw new ConfigError(
          path,
          `${source}: ${at}.filePattern: Invalid value: "${filePattern}": File pattern must not contain equal sign or comma`,
        );
      if (verbosity > 2 ** 31 - 1) throw new ConfigError(path, `${source}: ${at}.verbosity: Invalid value: ${verbosity}: Must be <= 2147483647`);
      return `${filePattern}=${verbosity}`;
    })
    .join(',');
}

// YAML 1.1 as upstream reads the file: sigs.k8s.io/yaml YAMLToJSON unmarshals it with its go-yaml v2 fork, whose
// resolve() (goyaml.v2/resolve.go) types each plain scalar; js-yaml's default, YAML 1.2's core schema, reads `yes` as a
// string and `017` as 17. Quoted scalars and `!!str` stay strings in both.
const YAML11_TRUE = ['y', 'Y', 'yes', 'Yes', 'YES', 'true', 'True', 'TRUE', 'on', 'On', 'ON'];
const YAML11_FALSE = ['n', 'N', 'no', 'No', 'NO', 'false', 'False', 'FALSE', 'off', 'Off', 'OFF'];
const YAML11_NULL = ['', '~', 'null', 'Null', 'NULL'];
const YAML11_SPECIAL_FLOATS: Readonly<Record<string, number>> = Object.fromEntries([
  ...['.nan', '.NaN', '.NAN'].map((s) => [s, NaN]),
  ...['.inf', '.Inf', '.INF', '+.inf', '+.Inf', '+.INF'].map((s) => [s, Infinity]),
  ...['-.inf', '-.Inf', '-.INF'].map((s) => [s, -Infinity]),
]);
const DIGITS_AND_SIGNS = [...'0123456789+-'];
/** Go's strconv.ParseInt(s, 0, 64) syntax (base prefixes 0x, 0o, 0b in either case; a leading 0 is octal), underscores already removed. */
const GO_INT = /^[-+]?(?:0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO][0-7]+|0[0-7]*|[1-9][0-9]*)$/;
/** go-yaml v2's yamlStyleFloat. */
const GO_YAML_FLOAT = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$/;

/** A plain scalar as a go-yaml v2 integer (any size; int32 fields check their range later), or NOT_RESOLVED. */
function yaml11Int(source: string): number | typeof NOT_RESOLVED {
  const plain = source.replaceAll('_', '');
  if (!GO_INT.test(plain)) return NOT_RESOLVED;
  const negative = plain.startsWith('-');
  const digits = plain.replace(/^[-+]/, '');
  // BigInt takes 0x/0o/0b itself; Go reads "017" as octal, BigInt as decimal.
  const magnitude = BigInt(/^0[0-7]+$/.test(digits) ? `0o${digits.slice(1)}` : digits);
  return Number(negative ? -magnitude : magnitude);
}

/** A plain scalar as a go-yaml v2 float (not an integer: that tag comes first), or NOT_RESOLVED; out of range is a string, as there. */
function yaml11Float(source: string): number | typeof NOT_RESOLVED {
  if (source in YAML11_SPECIAL_FLOATS) return YAML11_SPECIAL_FLOATS[source]!;
  // A leading '.' goes to ParseFloat as it is; a digit or sign to yamlStyleFloat without underscores.
  const text = source.startsWith('.') ? source : source.replaceAll('_', '');
  if (!GO_YAML_FLOAT.test(text)) return NOT_RESOLVED;
  const value = Number(text);
  return Number.isFinite(value) ? value : NOT_RESOLVED;
}

/**
 * Whether go-yaml v2's resolve() gives a plain scalar a tag other than !!str (null, bool, int, float, merge, or a
 * timestamp, which its encoder sees too): the strings its encoder double-quotes.
 */
export function goYamlResolvesNonString(s: string): boolean {
  if (YAML11_NULL.includes(s) || YAML11_TRUE.includes(s) || YAML11_FALSE.includes(s) || s === '<<') return true;
  if (/^[0-9+\-.]/.test(s) && (yaml11Int(s) !== NOT_RESOLVED || yaml11Float(s) !== NOT_RESOLVED)) return true;
  // parseTimestamp's formats: 2006-1-2, with T/t15:4:5.999999999Z07:00 or " 15:4:5.999999999".
  return /^\d{4}-\d{1,2}-\d{1,2}(?:[Tt]\d{1,2}:\d{1,2}:\d{1,2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})| \d{1,2}:\d{1,2}:\d{1,2}(?:\.\d+)?)?$/.test(s);
}

/**
 * The schema upstream's decoder amounts to: go-yaml v2's plain scalars (bools y/yes/on/n/no/off in three cases, nulls,
 * Go integer syntax with underscores, floats without sexagesimal), merge keys (`<<`); timestamps stay strings, as
 * go-yaml v2 gives them to an interface{} (YAMLToJSON's target).
 */
export const UPSTREAM_YAML_SCHEMA = new Schema([
  strTag,
  seqTag,
  mapTag,
  defineScalarTag<null>('tag:yaml.org,2002:null', {
    implicit: true,
    implicitFirstChars: ['', '~', 'n', 'N'],
    resolve: (source) => (YAML11_NULL.includes(source) ? null : NOT_RESOLVED),
    identify: (v) => v === null,
    represent: () => 'null',
  }),
  defineScalarTag<boolean>('tag:yaml.org,2002:bool', {
    implicit: true,
    implicitFirstChars: [...'yYnNtTfFoO'],
    resolve: (source) => (YAML11_TRUE.includes(source) ? true : YAML11_FALSE.includes(source) ? false : NOT_RESOLVED),
    identify: (v) => typeof v === 'boolean',
  }),
  defineScalarTag<number>('tag:yaml.org,2002:int', {
    implicit: true,
    implicitFirstChars: DIGITS_AND_SIGNS,
    resolve: (source) => yaml11Int(source),
    identify: (v) => Number.isInteger(v),
  }),
  defineScalarTag<number>('tag:yaml.org,2002:float', {
    implicit: true,
    implicitFirstChars: [...DIGITS_AND_SIGNS, '.'],
    // An explicit !!float takes an integer too (go-yaml converts it).
    resolve: (source, explicit) => {
      const f = yaml11Float(source);
      return f === NOT_RESOLVED && explicit ? yaml11Int(source) : f;
    },
    identify: (v) => typeof v === 'number',
  }),
  mergeTag,
]);

/**
 * The first YAML document, as upstream's decoder reads a file (sigs.k8s.io/yaml YAMLToJSON, one yaml.Unmarshal): a
 * `---` after it, or further documents, are not read.
 */
const firstDocument = (text: string, options?: LoadOptions): unknown => loadAll(text, null, { schema: UPSTREAM_YAML_SCHEMA, ...options })[0];

/** js-yaml refuses duplicate keys; upstream's strict decoder too, its lenient one keeps the last. */
function loadYaml(text: string, source: string): { doc: unknown; duplicateKeys: string[] } {
  try {
    return { doc: firstDocument(text), duplicateKeys: [] };
  } catch (err) {
    const message = (err as Error).message;
    if (/duplicated mapping key/.test(message)) {
      // The first duplicate, by the line js-yaml points at (others are not named).
      const line = (err as { mark?: { line?: number } }).mark?.line;
      const key = line === undefined ? '' : (text.split('\n')[line] ?? '').trim().replace(/^-\s*/, '').split(':')[0]!.trim();
      const duplicateKeys = [line === undefined ? '?' : `${key} (line ${line + 1})`];
      try {
        return { doc: firstDocument(text, { json: true }), duplicateKeys };
      } catch {
        // fall through to the original error
      }
    }
    throw new ConfigError('', `${source}: not valid YAML: ${message.split('\n')[0]}`);
  }
}

/** The warning upstream logs when it fell back to lenient decoding ("Using lenient decoding as strict decoding failed"), or null. */
export function lenientDecodingWarning(parsed: ParsedConfigFile, source: string): string | null {
  const problems = [...parsed.unknownFields.map((f) => `unknown field "${f}"`), ...parsed.duplicateKeys.map((k) => `duplicate field "${k}"`)];
  if (!problems.length) return null;
  return `${source}: strict decoding failed (${problems.join(', ')}); using lenient decoding as upstream does: these fields are ignored`;
}

/**
 * Said after a type error when a boolean stands where the field wants something else: in YAML 1.1, which upstream's
 * decoder reads (sigs.k8s.io/yaml YAMLToJSON), `hostnameOverride: no` is false, and decoding false into a string fails.
 */
function booleanNote(value: unknown): string {
  const bools = Array.isArray(value) ? value.some((x) => typeof x === 'boolean') : typeof value === 'boolean';
  return bools ? ' (the file is YAML 1.1, as upstream reads it: an unquoted y, yes, on, n, no or off is a boolean; quote it for a string)' : '';
}

/** The first .nan or .inf in the document, by path: upstream's YAMLToJSON cannot write it as JSON (json.Marshal fails), and refuses the file. */
function nonFinite(value: unknown, path: string): { path: string; value: number } | null {
  if (typeof value === 'number') return Number.isFinite(value) ? null : { path, value };
  if (value === null || typeof value !== 'object') return null;
  for (const [k, v] of Object.entries(value)) {
    const found = nonFinite(v, Array.isArray(value) ? `${path}[${k}]` : path ? `${path}.${k}` : k);
    if (found) return found;
  }
  return null;
}

function fromFile(spec: FlagSpec, value: unknown, path: string, source: string): FlagValue {
  const bad = (want: string): ConfigError =>
    new ConfigError(path, `${source}: ${path}: expected ${want}, got ${describeValue(value)}${booleanNote(value)}`);
  if (value === null || value === undefined) return convertFlagValue(spec, spec.default);
  if (ZERO_MEANS_DEFAULT.has(spec.name) && isZero(spec, value)) return convertFlagValue(spec, spec.default);
  let raw: string;
  switch (spec.type) {
    case 'bool':
      if (typeof value !== 'boolean') throw bad('true or false');
      return value;
    case 'int':
      if (!Number.isInteger(value)) throw bad('an integer');
      raw = String(value);
      break;
    case 'float':
      if (typeof value !== 'number') throw bad('a number');
      raw = String(value);
      break;
    case 'duration':
      if (typeof value !== 'string') throw bad('a duration string such as "30s"');
      raw = value;
      break;
    case 'stringList':
      if (!Array.isArray(value) || !value.every((x) => typeof x === 'string')) throw bad('a list of strings');
      return value.map((x: string) => x.trim());
    case 'mapStringBool':
      if (typeof value !== 'object' || Array.isArray(value) || !Object.values(value).every((x) => typeof x === 'boolean'))
        throw bad('a map of name: true|false');
      return { ...(value as Record<string, boolean>) };
    case 'string':
      if (typeof value !== 'string') throw bad('a string');
      raw = value;
      break;
  }
  try {
    return convertFlagValue(spec, raw);
  } catch (err) {
    throw new ConfigError(path, `${source}: ${path}: ${(err as Error).message.replace(` for ${settingLabel(spec)}`, '')}`);
  }
}

/**
 * logging.flushFrequency as component-base decodes it (TimeOrMetaDuration): nanoseconds as a number or a duration
 * string, in milliseconds; 0 (kubeadm writes `flushFrequency: 0`) or absent is the default 5s, as
 * SetRecommendedLoggingConfiguration sets it.
 */
function flushFrequencyFromFile(value: unknown, path: string, source: string): number {
  const spec = AGENT_FLAGS.find((s) => s.name === 'log-flush-frequency')!;
  const ns = typeof value === 'number' && Number.isInteger(value) ? BigInt(value) : typeof value === 'string' ? parseGoDurationNs(value) : null;
  if (value === null || value === undefined || ns === 0n) return convertFlagValue(spec, spec.default) as number;
  if (ns === null || ns < 0n)
    throw new ConfigError(path, `${source}: ${path}: expected a duration such as "5s" or a number of nanoseconds, got ${describeValue(value)}`);
  return Number(ns / 1_000_000n);
}

/**
 * Effective flag values: the file's values, then the command-line flags that
 * upstream lets win; returns the flags that were ignored because of --config.
 */
export function mergeConfig(
  file: ReadonlyMap<string, FlagValue>,
  flags: ReadonlyMap<string, FlagValue>,
): { values: Map<string, FlagValue>; ignored: string[] } {
  const values = new Map(file);
  const ignored: string[] = [];
  for (const [name, value] of flags) {
    const spec = AGENT_FLAGS.find((s) => s.name === name);
    // copyLogsFromFlags: the flag's vmodule entries first, then the file's.
    if (name === 'vmodule' && file.has(name)) values.set(name, [value, file.get(name)].filter((v) => v !== '').join(','));
    else if (name === 'config' || FLAGS_OVER_CONFIG.has(name) || (!spec?.config && !ignoredWithConfig(name))) values.set(name, value);
    else ignored.push(`--${name}`);
  }
  return { values, ignored };
}

/**
 * A KubeProxyConfiguration document for the effective configuration (for
 * --write-config-to), as upstream's writeConfigFile encodes it: defaults
 * applied (mode: iptables, detectLocalMode: ClusterCIDR, ports appended to
 * bind addresses; in nftables mode nodePortAddresses [primary] and the mode's
 * settings in `nftables:`), durations as Go prints them. `notes` names the values a
 * v1alpha1 file cannot carry: a zero there means "the default" when read back.
 */
export function configDocument(values: ReadonlyMap<string, FlagValue>, config: ProxyConfig): { doc: Record<string, unknown>; notes: string[] } {
  const effective: Readonly<Record<string, FlagValue>> = {
    mode: config.mode,
    'detect-local-mode': config.detectLocalMode,
    'healthz-bind-address': config.healthzBindAddress,
    'metrics-bind-address': config.metricsBindAddress,
    'nodeport-addresses': config.nodePortAddresses,
    // As upstream's conversion back to v1alpha1: the nftables mode's settings go to its own section.
    ...(config.mode === 'nftables'
      ? {
          'nftables-sync-period': config.syncPeriodMs,
          'nftables-min-sync-period': config.minSyncPeriodMs,
          'nftables-masquerade-all': config.masqueradeAll,
          'nftables-masquerade-bit': config.masqueradeBit,
        }
      : {}),
  };
  const doc: Record<string, unknown> = { apiVersion: CONFIG_API_VERSION, kind: 'KubeProxyConfiguration' };
  const notes: string[] = [];
  for (const spec of AGENT_FLAGS) {
    if (!spec.config || spec.name === 'proxy-mode') continue;
    const v = effective[spec.name] ?? values.get(spec.name) ?? convertFlagValue({ ...spec, values: undefined as never }, spec.default);
    const written = spec.type === 'duration' ? formatDuration(v as number) : v;
    if (ZERO_MEANS_DEFAULT.has(spec.name) && isZero(spec, written) && !isZero(spec, spec.default)) {
      notes.push(
        `${spec.config}: ${JSON.stringify(written)} reads back as the default ${spec.default}: a zero in a v1alpha1 file means "default" (upstream's defaulting); give --${spec.name.replace(/^nftables-/, 'iptables-')} on the command line instead`,
      );
    }
    const parts = spec.config.split('.');
    let node = doc;
    for (const p of parts.slice(0, -1)) node = (node[p] ??= {}) as Record<string, unknown>;
    node[parts.at(-1)!] = written;
  }
  writeLogging(doc, values);
  return { doc, notes };
}

/**
 * component-base's LoggingConfiguration as upstream's encoder writes it: flushFrequency, each format's infoBufferSize
 * (a Quantity, never omitted), splitStream only when set (omitempty), vmodule as its list when there is one.
 */
function writeLogging(doc: Record<string, unknown>, values: ReadonlyMap<string, FlagValue>): void {
  const flag = (name: string): FlagValue => values.get(name) ?? flagDefault(AGENT_FLAGS.find((s) => s.name === name)!);
  const logging = (doc['logging'] ??= {}) as Record<string, unknown>;
  logging['flushFrequency'] = formatDuration(flag('log-flush-frequency') as number);
  const options = (logging['options'] ??= {}) as Record<string, Record<string, unknown>>;
  for (const format of ['text', 'json']) {
    const o = (options[format] ??= {});
    if (o['splitStream'] !== true) delete o['splitStream'];
    o['infoBufferSize'] = String(flag(`log-${format}-info-buffer-size`));
  }
  const vmodule = String(flag('vmodule'))
    .split(',')
    .filter((e) => e !== '')
    .map((e) => ({ filePattern: e.split('=')[0], verbosity: Number(e.split('=')[1]) }));
  if (vmodule.length > 0) logging['vmodule'] = vmodule;
}
