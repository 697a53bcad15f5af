/**
 * --config FILE: a KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1)
 * decoded strictly, as upstream does: unknown fields and wrong types are
 * errors naming the field. Values are mapped onto the flag table through each
 * flag's `config` path, so the file and the flags share one set of
 * conversions and validations.
 *
 * Precedence, as upstream: with --config, the file replaces the flags, except
 * --hostname-override and the logging flag -v, which still win (kube-proxy-ts
 * additionally warns about every other flag given alongside --config). Flags
 * that exist only in kube-proxy-ts (--objects, --iptables-backend) always apply.
 */
import { load } from 'js-yaml';
import { AGENT_FLAGS } from './flag-table.ts';
import { convertFlagValue, formatDuration, type FlagValue } from './flags.ts';

export const CONFIG_API_VERSION = 'kubeproxy.config.k8s.io/v1alpha1';

export class ConfigError extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(message);
    this.name = 'ConfigError';
    this.field = field;
  }
}

/** Fields upstream's v1alpha1 knows that kube-proxy-ts reads without acting on (other modes, platforms, logging). */
const KNOWN_UNMAPPED = new Set([
  'apiVersion', 'kind', 'clientConnection.acceptContentTypes', 'ipvs', 'nftables', 'winkernel',
  'detectLocal.clusterCIDRs',
]);
/** Objects whose other fields are known but not acted on (only logging.verbosity is read). */
const KNOWN_UNMAPPED_OBJECTS = new Set(['logging']);
const OBJECT_FIELDS = new Set(['clientConnection', 'conntrack', 'detectLocal', 'iptables', 'logging']);

/**
 * Fields whose zero value means "the default", as upstream's v1alpha1
 * defaulting (SetDefaults_KubeProxyConfiguration) fills them: kubeadm writes
 * every field, zeros included (syncPeriod: 0s, healthzBindAddress: "", ...).
 */
const ZERO_MEANS_DEFAULT = new Set([
  'bind-address', 'healthz-bind-address', 'metrics-bind-address', 'iptables-sync-period', 'iptables-min-sync-period',
  'udp-timeout', 'config-sync-period', 'kube-api-content-type', 'kube-api-qps', 'kube-api-burst',
]);

function isZero(value: unknown): boolean {
  if (value === '' || value === 0) return true;
  if (typeof value !== 'string') return false;
  const numbers = value.split(/[a-zµ]+/).filter((n) => n !== '');
  return numbers.length > 0 && /^[0-9.a-zµ]+$/.test(value) && numbers.every((n) => Number(n) === 0);
}

/** Flags whose command-line value wins over the file. */
export const FLAGS_OVER_CONFIG = new Set(['hostname-override', 'v']);

function describe(v: unknown): string {
  return Array.isArray(v) ? 'a list' : v === null ? 'null' : typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`;
}

/** Flag-name -> value for every field set in the file. */
export function parseConfigFile(text: string, source: string): Map<string, FlagValue> {
  let doc: unknown;
  try {
    doc = load(text);
  } catch (err) {
    throw new ConfigError('', `${source}: not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new ConfigError('', `${source}: expected a KubeProxyConfiguration object`);
  const obj = doc as Record<string, unknown>;
  if (obj['kind'] !== 'KubeProxyConfiguration') throw new ConfigError('kind', `${source}: kind must be KubeProxyConfiguration, got ${describe(obj['kind'])}`);
  if (obj['apiVersion'] !== CONFIG_API_VERSION) throw new ConfigError('apiVersion', `${source}: apiVersion must be ${CONFIG_API_VERSION}, got ${describe(obj['apiVersion'])}`);

  const byPath = new Map<string, (typeof AGENT_FLAGS)[number]>();
  for (const spec of AGENT_FLAGS) if (spec.config && !byPath.has(spec.config)) byPath.set(spec.config, spec);

  const out = new Map<string, FlagValue>();
  const visit = (value: unknown, path: string): void => {
    const spec = byPath.get(path);
    if (spec) {
      out.set(spec.name, fromFile(spec, value, path, source));
      return;
    }
    const top = path.split('.')[0]!;
    if (KNOWN_UNMAPPED.has(path) || KNOWN_UNMAPPED.has(top) || (path !== top && KNOWN_UNMAPPED_OBJECTS.has(top))) return;
    if (OBJECT_FIELDS.has(path)) {
      if (value === null || value === undefined) return;
      if (typeof value !== 'object' || Array.isArray(value)) throw new ConfigError(path, `${source}: ${path}: expected an object, got ${describe(value)}`);
      for (const [k, v] of Object.entries(value)) visit(v, `${path}.${k}`);
      return;
    }
    throw new ConfigError(path, `${source}: unknown field "${path}"`);
  };
  for (const [k, v] of Object.entries(obj)) visit(v, k);
  return out;
}

function fromFile(spec: (typeof AGENT_FLAGS)[number], value: unknown, path: string, source: string): FlagValue {
  const bad = (want: string): ConfigError => new ConfigError(path, `${source}: ${path}: expected ${want}, got ${describe(value)}`);
  if (value === null || value === undefined) return convertFlagValue(spec, spec.default);
  if (ZERO_MEANS_DEFAULT.has(spec.name) && isZero(value)) return convertFlagValue(spec, spec.default);
  let raw: string;
  switch (spec.type) {
    case 'bool':
      if (typeof value !== 'boolean') throw bad('true or false');
      return value;
    case 'int':
      if (!Number.isInteger(value)) throw bad('an integer');
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
      if (typeof value !== 'object' || Array.isArray(value) || !Object.values(value).every((x) => typeof x === 'boolean')) throw bad('a map of name: true|false');
      return { ...(value as Record<string, boolean>) };
    case 'string':
      if (typeof value !== 'string') throw bad('a string');
      raw = value;
      break;
  }
  try {
    return convertFlagValue(spec, raw);
  } catch (err) {
    throw new ConfigError(path, `${source}: ${path}: ${(err as Error).message.replace(/ for --[\w-]+/, '')}`);
  }
}

/**
 * Effective flag values: the file's values, then the command-line flags that
 * upstream lets win; returns the flags that were ignored because of --config.
 */
export function mergeConfig(file: ReadonlyMap<string, FlagValue>, flags: ReadonlyMap<string, FlagValue>): { values: Map<string, FlagValue>; ignored: string[] } {
  const values = new Map(file);
  const ignored: string[] = [];
  for (const [name, value] of flags) {
    const spec = AGENT_FLAGS.find((s) => s.name === name);
    if (name === 'config' || FLAGS_OVER_CONFIG.has(name) || !spec?.config) values.set(name, value);
    else ignored.push(`--${name}`);
  }
  return { values, ignored };
}

/** A KubeProxyConfiguration document for the effective values (for --write-config-to). */
export function configDocument(values: ReadonlyMap<string, FlagValue>): Record<string, unknown> {
  const doc: Record<string, unknown> = { apiVersion: CONFIG_API_VERSION, kind: 'KubeProxyConfiguration' };
  for (const spec of AGENT_FLAGS) {
    if (!spec.config || spec.name === 'proxy-mode') continue;
    const v = values.get(spec.name) ?? convertFlagValue({ ...spec, values: undefined as never }, spec.default);
    const parts = spec.config.split('.');
    let node = doc;
    for (const p of parts.slice(0, -1)) node = (node[p] ??= {}) as Record<string, unknown>;
    node[parts.at(-1)!] = spec.type === 'duration' ? formatDuration(v as number) : v;
  }
  return doc;
}
