/**
 * The z-pages upstream kube-proxy serves on its metrics server since v1.36 turned their gates on (KEP-4827 statusz,
 * KEP-4828 flagz; k8s.io/apiserver pkg/server/flagz and pkg/server/statusz):
 * - /flagz: the command line's flags, each with the value given or its default;
 * - /statusz: when the process started, how long it has been up, its versions, and the server's other paths.
 * Text for people by default (a header, a warning that the text is for debugging only, then `name<sep>value` lines,
 * the separator picked at random so nobody parses it), the config.k8s.io Flagz/Statusz objects in JSON or YAML when
 * the Accept header asks for one by kind and version (zpages-negotiate.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { encodeYaml } from './go-yaml.ts';
import { encodeJson, negotiateZpage, structuredContentType, ZPAGE_GROUP, type ZpageVersion } from './zpages-negotiate.ts';

/** The separators the text pages pick from, one per answer (textserializer.go's delimiters). */
export const DELIMITERS = [':', ': ', '=', ' '] as const;

const WARNING =
  'Warning: This endpoint is not meant to be machine parseable, has no formatting compatibility guarantees and is for debugging purposes only.';

const header = (component: string, page: string): string => `\n${component} ${page}\n${WARNING}\n`;

/** Go's html.EscapeString, which statusz's text applies to each value. */
const htmlEscape = (s: string): string => s.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&#39;', '"': '&#34;' })[c]!);

/** flagzTextSerializer.Encode: the header, then every flag sorted by name. */
export function flagzText(component: string, flags: Readonly<Record<string, string>>, delimiter: string): string {
  const names = Object.keys(flags).sort();
  return header(component, 'flagz') + names.map((name) => `${name}${delimiter}${flags[name]}\n`).join('');
}

export interface StatuszInfo {
  /** The process's start, whole seconds since the epoch (upstream's GetProcessStart, truncated). */
  readonly startUnix: number;
  /** kube-proxy-ts's version, where upstream gives its Kubernetes release ("1.36.0"). */
  readonly binaryVersion: string;
  /** The Kubernetes release ("1.36") whose kube-proxy this one stands in for. */
  readonly emulationVersion: string;
  /** Node.js's version (`v24.1.0`), printed where upstream prints Go's. */
  readonly nodeVersion: string;
  /** The server's listed paths (statusz.WithListedPaths), folded to their first segment. */
  readonly paths: readonly string[];
}

/** statusz's aggregatePaths: the first segment of each listed path, once, sorted (the apiserver's API roots left out). */
export function aggregatePaths(listed: readonly string[]): string[] {
  const hidden = new Set(['/apis', '/api', '/openid', '/openapi', '/.well-known']);
  const folders = new Set<string>();
  for (const p of listed) {
    const first = p.split('/')[1];
    if (first) folders.add(`/${first}`);
  }
  return [...folders].filter((f) => !hidden.has(f)).sort();
}

const pad2 = (n: number): string => String(n).padStart(2, '0');

/**
 * Go's time.UnixDate layout, `Mon Jan _2 15:04:05 MST 2006`, in the given IANA time zone (default: the process's, as
 * Go's time.Local). The zone's abbreviation is Intl's en-US short name: Go's own for UTC and the US zones, `GMT+2`
 * where Go would print a tzdata abbreviation such as `CET`.
 */
export function unixDate(epochMs: number, timeZone?: string): string {
  const parts = new Intl.DateTimeFormat('en-US', {
    ...(timeZone ? { timeZone } : {}),
    weekday: 'short',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
    year: 'numeric',
    timeZoneName: 'short',
  }).formatToParts(new Date(epochMs));
  const part = (type: Intl.DateTimeFormatPartTypes): string => parts.find((p) => p.type === type)?.value ?? '';
  return `${part('weekday')} ${part('month')} ${part('day').padStart(2, ' ')} ${part('hour')}:${part('minute')}:${part('second')} ${part('timeZoneName')} ${part('year')}`;
}

/** Whole seconds up, never negative (statusz's uptimeSeconds). */
const upSeconds = (info: StatuszInfo, nowMs: number): number => Math.max(0, Math.trunc(nowMs / 1000 - info.startUnix));

/**
 * statuszTextSerializer.Encode: the header, a blank line, then Started (UnixDate), Up (`H hr MM min SS sec`), the
 * runtime's version (`Node version` where upstream has `Go version`), Binary version, Emulation version and Paths.
 */
export function statuszText(component: string, info: StatuszInfo, delimiter: string, nowMs: number, timeZone?: string): string {
  const d = htmlEscape(delimiter);
  const up = Math.trunc(nowMs / 1000 - info.startUnix);
  const upText = `${Math.trunc(up / 3600)} hr ${pad2(Math.trunc(up / 60) % 60)} min ${pad2(up % 60)} sec`;
  const emulation = info.emulationVersion ? `Emulation version${d} ${htmlEscape(info.emulationVersion)}` : '';
  const paths = info.paths.length ? `Paths${d} ${htmlEscape(info.paths.join(' '))}` : '';
  return (
    header(component, 'statusz') +
    `\nStarted${d} ${htmlEscape(unixDate(info.startUnix * 1000, timeZone))}\nUp${d} ${htmlEscape(upText)}\n` +
    `Node version${d} ${htmlEscape(info.nodeVersion)}\nBinary version${d} ${htmlEscape(info.binaryVersion)}\n${emulation}\n${paths}\n`
  );
}

/** The config.k8s.io Flagz object (v1alpha1 and v1beta1 have the same fields). */
export function flagzObject(component: string, flags: Readonly<Record<string, string>>, version: ZpageVersion): Record<string, unknown> {
  const sorted = Object.fromEntries(
    Object.keys(flags)
      .sort()
      .map((k) => [k, flags[k]!]),
  );
  return {
    kind: 'Flagz',
    apiVersion: `${ZPAGE_GROUP}/${version}`,
    metadata: { name: component },
    ...(Object.keys(sorted).length ? { flags: sorted } : {}),
  };
}

/**
 * The config.k8s.io Statusz object. goVersion (no omitempty upstream) is empty: no Go built this binary; the Node.js
 * version is in the text page.
 */
export function statuszObject(component: string, info: StatuszInfo, version: ZpageVersion, nowMs: number): Record<string, unknown> {
  return {
    kind: 'Statusz',
    apiVersion: `${ZPAGE_GROUP}/${version}`,
    metadata: { name: component },
    startTime: new Date(info.startUnix * 1000).toISOString().replace(/\.\d+Z$/, 'Z'),
    uptimeSeconds: upSeconds(info, nowMs),
    goVersion: '',
    binaryVersion: info.binaryVersion,
    ...(info.emulationVersion ? { emulationVersion: info.emulationVersion } : {}),
    paths: [...info.paths],
  };
}

export interface ZpageDeps {
  /** Wall-clock time, milliseconds since the epoch. */
  readonly now: () => number;
  /** [0, 1): picks each text answer's separator. */
  readonly random: () => number;
  /** The IANA zone /statusz shows its start time in (default: the process's). */
  readonly timeZone?: string;
}

type Page = { readonly kind: 'Flagz' | 'Statusz'; text(delimiter: string): string; object(version: ZpageVersion): Record<string, unknown> };

/** handleFlagz / handleStatusz: text, a structured object, or 406, as the request's Accept negotiates. */
function pageHandler(page: Page, deps: ZpageDeps, cacheText: boolean): (req: IncomingMessage, res: ServerResponse) => void {
  let cached: string | null = null;
  const deprecated = `299 - "This version of the ${page.kind.toLowerCase()} endpoint is deprecated. Please use a newer version."`;
  return (req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const query = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
    // Go's Header.Get: the first Accept header only.
    const answer = negotiateZpage(page.kind, req.headersDistinct['accept']?.[0], query, req.headers['user-agent'] ?? '');
    if (answer.kind === 'text') {
      const text = cached ?? page.text(DELIMITERS[Math.floor(deps.random() * DELIMITERS.length)]!);
      // flagz keeps its first text answer (its separator too); statusz writes each anew.
      if (cacheText) cached = text;
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' }).end(text);
    } else if (answer.kind === 'structured') {
      const obj = page.object(answer.version);
      const body = answer.mediaType === 'application/json' ? encodeJson(obj, answer.pretty) : encodeYaml(obj as Parameters<typeof encodeYaml>[0]);
      const headers: Record<string, string> = { 'Content-Type': structuredContentType(answer.mediaType, answer.version, page.kind) };
      if (answer.version === 'v1alpha1') headers['Warning'] = deprecated;
      res.writeHead(200, headers).end(body);
    } else res.writeHead(answer.status, { 'Content-Type': answer.contentType }).end(answer.body);
  };
}

/** flagz.Install's handler for a component's flags (fixed for the process's life, as upstream's text answer is). */
export function flagzHandler(component: string, flags: Readonly<Record<string, string>>, deps: ZpageDeps) {
  return pageHandler({ kind: 'Flagz', text: (d) => flagzText(component, flags, d), object: (v) => flagzObject(component, flags, v) }, deps, true);
}

/** statusz.Install's handler. */
export function statuszHandler(component: string, info: StatuszInfo, deps: ZpageDeps) {
  return pageHandler(
    {
      kind: 'Statusz',
      text: (d) => statuszText(component, info, d, deps.now(), deps.timeZone),
      object: (v) => statuszObject(component, info, v, deps.now()),
    },
    deps,
    false,
  );
}
