/**
 * Content negotiation of the z-pages (/flagz, /statusz), as k8s.io/apiserver's does for them: goautoneg's Accept
 * parsing, negotiation.NegotiateMediaTypeOptions over the pages' three media types, the Flagz/Statusz
 * EndpointRestrictions (text/plain as is; JSON and YAML only as `;as=<Kind>;g=config.k8s.io;v=v1alpha1|v1beta1`), and
 * the 406 upstream's ErrorNegotiated writes when nothing fits. Pure: a request's headers in, a decision out.
 */
import { encodeYaml } from './go-yaml.ts';

/** The pages' serializers, in their codec factory's order (JSON, YAML, then the text one; protobuf filtered out). */
const SERIALIZERS = [
  { mediaType: 'application/json', type: 'application', subType: 'json', stream: true },
  { mediaType: 'application/yaml', type: 'application', subType: 'yaml', stream: false },
  { mediaType: 'text/plain', type: 'text', subType: 'plain', stream: false },
] as const;

export type MediaType = (typeof SERIALIZERS)[number]['mediaType'];

export const ZPAGE_GROUP = 'config.k8s.io';
export const ZPAGE_VERSIONS = ['v1alpha1', 'v1beta1'] as const;
export type ZpageVersion = (typeof ZPAGE_VERSIONS)[number];

interface AcceptClause {
  readonly type: string;
  readonly subType: string;
  readonly q: number;
  readonly params: ReadonlyMap<string, string>;
}

/** goautoneg's nextSplitElement. */
function split(s: string, sep: string): [string, string] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, ''] : [s.slice(0, i), s.slice(i + 1)];
}

const trimSpaces = (s: string): string => s.replace(/^ +| +$/g, '');

/** strconv.ParseFloat(s, 32), 0 where Go refuses the text (as goautoneg ignores the error). */
function parseQ(s: string): number {
  if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s)) return Math.fround(Number(s));
  if (/^[+-]?(inf|infinity)$/i.test(s)) return s.startsWith('-') ? -Infinity : Infinity;
  return /^nan$/i.test(s) ? NaN : 0;
}

/**
 * goautoneg.ParseAccept: clauses without a subtype (but `*`) or with a second `/` are dropped, `q` is taken out of the
 * parameters (unparsable: 0; a q=0 clause is kept), then sorted by its Less (higher q first, then a concrete type, then a
 * concrete subtype) with Go's insertion sort, which sort.Sort runs on the few clauses a header has.
 */
export function parseAccept(header: string): AcceptClause[] {
  const clauses: AcceptClause[] = [];
  let remaining = header;
  while (remaining.length > 0) {
    let part: string;
    [part, remaining] = split(remaining, ',');
    const [mime, paramText] = split(trimSpaces(part), ';');
    const [typePart, rest] = split(mime, '/');
    const type = trimSpaces(typePart);
    let subType: string;
    if (rest.length === 0) {
      if (type !== '*') continue;
      subType = '*';
    } else {
      const [sub, extra] = split(rest, '/');
      if (extra.length > 0) continue;
      subType = trimSpaces(sub);
    }
    let q = 1;
    const params = new Map<string, string>();
    let p = paramText;
    while (p.length > 0) {
      let item: string;
      [item, p] = split(p, ';');
      const [key, valueRest] = split(item, '=');
      if (valueRest.length === 0) continue;
      const [value, extra] = split(valueRest, '=');
      if (extra.length !== 0) continue;
      const token = trimSpaces(key);
      if (token === 'q') q = parseQ(value);
      else params.set(token, trimSpaces(value));
    }
    clauses.push({ type, subType, q, params });
  }
  const less = (a: AcceptClause, b: AcceptClause): boolean =>
    a.q > b.q || (a.type !== '*' && b.type === '*') || (a.subType !== '*' && b.subType === '*');
  for (let i = 1; i < clauses.length; i++)
    for (let j = i; j > 0 && less(clauses[j]!, clauses[j - 1]!); j--) [clauses[j], clauses[j - 1]] = [clauses[j - 1]!, clauses[j]!];
  return clauses;
}

interface Gvk {
  group: string;
  version: string;
  kind: string;
}

/** Which conversions an endpoint takes: the page's (FlagzEndpointRestrictions) or ErrorNegotiated's default ones. */
type Restrictions = (type: string, subType: string, convert: Gvk | null) => boolean;

const pageRestrictions =
  (kind: string): Restrictions =>
  (type, subType, convert) => {
    if (type === 'text' && subType === 'plain') return convert === null;
    return (
      convert !== null && convert.group === ZPAGE_GROUP && convert.kind === kind && (ZPAGE_VERSIONS as readonly string[]).includes(convert.version)
    );
  };

/** negotiation.DefaultEndpointRestrictions: no conversion, and streams only as watch. */
const defaultRestrictions: Restrictions = (_type, _subType, convert) => convert === null;

interface Negotiated {
  readonly mediaType: MediaType;
  readonly convert: Gvk | null;
  readonly pretty: boolean;
}

/** NegotiateMediaTypeOptions: the first clause (in ParseAccept's order) a serializer matches and the endpoint allows. */
function negotiate(accept: string, allows: Restrictions, watchStreams: boolean): Negotiated | null {
  for (const clause of parseAccept(accept)) {
    for (const s of SERIALIZERS) {
      const matches =
        (clause.type === s.type && (clause.subType === s.subType || clause.subType === '*')) || (clause.type === '*' && clause.subType === '*');
      if (!matches) continue;
      // acceptMediaTypeOptions
      let convert: Gvk | null = null;
      let refused = false;
      for (const [k, v] of clause.params) {
        if (k === 'as' || k === 'g' || k === 'v') {
          convert ??= { group: '', version: '', kind: '' };
          if (k === 'as') convert.kind = v;
          else if (k === 'g') convert.group = v;
          else convert.version = v;
        } else if (k === 'stream' && v !== '' && !(s.stream && watchStreams && v === 'watch')) refused = true;
        else if (k === 'sv' && v !== '') refused = true;
      }
      if (refused || !allows(s.type, s.subType, convert)) continue;
      return { mediaType: s.mediaType, convert, pretty: clause.params.get('pretty') === '1' };
    }
  }
  return null;
}

/** negotiation's isPrettyPrint: `?pretty=<bool>`, else a curl, Wget or browser User-Agent. */
function prettyRequested(query: URLSearchParams, userAgent: string): boolean {
  const pp = query.get('pretty');
  if (pp) return /^(1|t|T|TRUE|true|True)$/.test(pp);
  return userAgent.startsWith('curl') || userAgent.startsWith('Wget') || userAgent.startsWith('Mozilla/5.0');
}

/** What to answer a z-page request with. */
export type ZpageAnswer =
  | { readonly kind: 'text' }
  | {
      readonly kind: 'structured';
      readonly mediaType: 'application/json' | 'application/yaml';
      readonly version: ZpageVersion;
      readonly pretty: boolean;
    }
  | { readonly kind: 'notAcceptable'; readonly status: number; readonly contentType: string; readonly body: string };

export const NOT_ACCEPTABLE_MESSAGE = `only the following media types are accepted: ${SERIALIZERS.map((s) => s.mediaType).join(', ')}`;

/** metav1.Status for the NotAcceptable error (ErrorToAPIStatus), fields in Go's order. */
const NOT_ACCEPTABLE_STATUS = {
  kind: 'Status',
  apiVersion: 'v1',
  metadata: {},
  status: 'Failure',
  message: NOT_ACCEPTABLE_MESSAGE,
  reason: 'NotAcceptable',
  code: 406,
};

/**
 * handleFlagz / handleStatusz's choice for a request: no Accept (or a blank one) is text; else the negotiated media
 * type: text/plain, or the page's kind in JSON or YAML at a version the Accept names. Nothing acceptable is 406 with a
 * Status, which ErrorNegotiated writes in the JSON or YAML the Accept takes without a conversion, and WriteRawJSON
 * (indented JSON) when it takes neither.
 */
export function negotiateZpage(kind: string, accept: string | undefined, query: URLSearchParams, userAgent: string): ZpageAnswer {
  if (accept === undefined || accept.trim() === '') return { kind: 'text' };
  const pretty = (n: Negotiated): boolean => n.pretty || prettyRequested(query, userAgent);
  const chosen = negotiate(accept, pageRestrictions(kind), false);
  if (chosen?.mediaType === 'text/plain') return { kind: 'text' };
  if (chosen) return { kind: 'structured', mediaType: chosen.mediaType, version: chosen.convert!.version as ZpageVersion, pretty: pretty(chosen) };
  const fallback = negotiate(accept, defaultRestrictions, true);
  if (fallback?.mediaType === 'application/json')
    return { kind: 'notAcceptable', status: 406, contentType: 'application/json', body: encodeJson(NOT_ACCEPTABLE_STATUS, pretty(fallback)) };
  if (fallback?.mediaType === 'application/yaml')
    return { kind: 'notAcceptable', status: 406, contentType: 'application/yaml', body: encodeYaml(NOT_ACCEPTABLE_STATUS) };
  // text/plain is never the fallback: the page takes it whenever the default restrictions do.
  return { kind: 'notAcceptable', status: 406, contentType: 'application/json', body: encodeJson(NOT_ACCEPTABLE_STATUS, true) };
}

/** The Content-Type WriteObjectNegotiated gives a converted object (generateMediaTypeWithGVK). */
export function structuredContentType(mediaType: string, version: ZpageVersion, kind: string): string {
  return `${mediaType};g=${ZPAGE_GROUP};v=${version};as=${kind}`;
}

/**
 * encoding/json as apimachinery's JSON serializer writes: json.Encoder (compact, a newline after) or, pretty,
 * MarshalIndent (two spaces, no newline); `<`, `>`, `&`, U+2028 and U+2029 escaped as Go escapes them.
 */
export function encodeJson(value: unknown, pretty: boolean): string {
  const text = pretty ? JSON.stringify(value, null, 2) : `${JSON.stringify(value)}\n`;
  return text.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
