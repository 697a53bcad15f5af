/**
 * Text of one manifest file -> the Services, EndpointSlices, Nodes and
 * ServiceCIDRs in it (networking.k8s.io/v1, or v1beta1 as 1.31-1.32 clusters
 * serve them: the same spec).
 * The file may be multi-document YAML, a JSON object, or a List (kind "List"
 * or "<Kind>List" with items), in YAML or JSON, as `kubectl get -o yaml`
 * writes them. Pure: reading the file is the caller's business.
 *
 * A file whose text starts with "{" or "[" is read with JSON.parse (a tenth
 * of the time and garbage of the YAML parser on a 12 MB file); its line
 * numbers come from a scan for the first character, done only when a
 * problem is reported. A key given twice in one JSON object keeps its last
 * value (as Go's encoding/json), where YAML refuses it. JSON.parse failing
 * sends the text through the YAML parser, whose error names line and column.
 * A lone UTF-16 surrogate (an escape such as "\udc2c") becomes U+FFFD, as
 * Go's encoding/json reads it.
 *
 * Errors: a YAML/JSON syntax error makes the whole file unusable (thrown,
 * naming the file, line and column). A document or list item that is not an
 * object, lacks kind/apiVersion or metadata.name, or is an EndpointSlice of an
 * unsupported version is skipped and reported as a problem naming the file,
 * document number and line. Objects of other kinds are ignored silently.
 * Namespaced objects without metadata.namespace go to "default", as kubectl
 * apply would put them.
 */
import { constructFromEvents, EVENT_DOCUMENT, parseEvents, YAMLException } from 'js-yaml';
import type { ObjectProblem } from '../../proxier/types.ts';
import { isRecord } from '../../proxier/raw.ts';

export interface ParsedObjects {
  services: unknown[];
  slices: unknown[];
  nodes: unknown[];
  /** ServiceCIDR objects (absent: none). */
  serviceCIDRs?: unknown[];
  problems: ObjectProblem[];
}

const WANTED: Readonly<Record<string, Exclude<keyof ParsedObjects, 'problems'>>> = {
  'v1/Service': 'services',
  'discovery.k8s.io/v1/EndpointSlice': 'slices',
  'v1/Node': 'nodes',
  'networking.k8s.io/v1/ServiceCIDR': 'serviceCIDRs',
  'networking.k8s.io/v1beta1/ServiceCIDR': 'serviceCIDRs',
};
const NAMESPACED = new Set(['services', 'slices']);

export function parseObjects(text: string, source: string): ParsedObjects {
  const out: ParsedObjects = { services: [], slices: [], nodes: [], serviceCIDRs: [], problems: [] };
  const parsed = parseJson(text) ?? loadDocuments(text, source);
  const { lineOf } = parsed;
  const docs = SURROGATE_ESCAPE.test(text) ? parsed.docs.map(wellFormed) : parsed.docs;
  docs.forEach((doc, i) => {
    if (doc === null || doc === undefined) return; // empty document ("---" at the end, comments only)
    const where = new Where(source, i, lineOf);
    if (!isRecord(doc)) return void out.problems.push(docProblem(where, `not an object (got ${Array.isArray(doc) ? 'a list' : typeof doc})`));
    const kind = doc['kind'];
    if (typeof kind === 'string' && kind.endsWith('List') && Array.isArray(doc['items'])) {
      // Items of a typed list (ServiceList) may omit kind and apiVersion: the list's own imply them.
      const itemKind = kind === 'List' ? undefined : kind.slice(0, -'List'.length);
      doc['items'].forEach((item: unknown, j: number) => {
        const filled = isRecord(item) && itemKind !== undefined ? { kind: itemKind, apiVersion: doc['apiVersion'], ...item } : item;
        take(filled, where.item(j), out);
      });
      return;
    }
    take(doc, where, out);
  });
  return out;
}

/** A \\u escape of a UTF-16 surrogate: the only way a string read from text can hold a lone one. */
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;

/**
 * The value with every lone surrogate in its strings and keys replaced by U+FFFD, as Go's encoding/json decodes
 * one (so as the API server and upstream kube-proxy would see the object). Two names that differ only in lone
 * surrogates are then one name, as their UTF-8 bytes (chain hashes, rule comments) already were.
 */
function wellFormed(value: unknown): unknown {
  if (typeof value === 'string') return value.toWellFormed();
  if (Array.isArray(value)) return value.map(wellFormed);
  if (!isRecord(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k.toWellFormed()] = wellFormed(v);
  return out;
}

/** Where a document or list item is, as problems name it; its line is looked up only when a problem is reported. */
class Where {
  private readonly source: string;
  private readonly doc: number;
  private readonly lineOf: (doc: number) => number;
  private readonly suffix: string;
  constructor(source: string, doc: number, lineOf: (doc: number) => number, suffix = '') {
    this.source = source;
    this.doc = doc;
    this.lineOf = lineOf;
    this.suffix = suffix;
  }
  item(j: number): Where {
    return new Where(this.source, this.doc, this.lineOf, ` item ${j + 1}`);
  }
  toString(): string {
    return `${this.source}:${this.lineOf(this.doc)} (document ${this.doc + 1})${this.suffix}`;
  }
}

function take(obj: unknown, where: Where, out: ParsedObjects): void {
  if (!isRecord(obj)) return void out.problems.push(docProblem(where, `not an object (got ${Array.isArray(obj) ? 'a list' : typeof obj})`));
  const { kind, apiVersion } = obj;
  if (typeof kind !== 'string' || kind === '') return void out.problems.push(docProblem(where, 'has no kind'));
  if (typeof apiVersion !== 'string' || apiVersion === '') return void out.problems.push(docProblem(where, 'has no apiVersion', kind));
  const bucket = WANTED[`${apiVersion}/${kind}`];
  if (bucket === undefined) {
    if (kind === 'EndpointSlice' && apiVersion.startsWith('discovery.k8s.io/')) {
      out.problems.push(docProblem(where, `EndpointSlice ${apiVersion} is not supported (use discovery.k8s.io/v1)`, kind));
    }
    return; // another kind (or another group's "Service"): not ours
  }
  const md = obj['metadata'];
  if (!isRecord(md) || typeof md['name'] !== 'string' || md['name'] === '') {
    return void out.problems.push(docProblem(where, 'has no metadata.name', kind));
  }
  if (NAMESPACED.has(bucket) && (md['namespace'] === undefined || md['namespace'] === null || md['namespace'] === '')) {
    obj['metadata'] = { ...md, namespace: 'default' };
  }
  (out[bucket] ??= []).push(obj);
}

function docProblem(where: Where, reason: string, kind = 'Document'): ObjectProblem {
  return { kind, namespace: '', name: String(where), field: '', reason };
}

interface Documents {
  readonly docs: readonly unknown[];
  /** The 1-based line where a document's content starts. */
  readonly lineOf: (doc: number) => number;
}

/** One JSON document, or null when the text is not JSON (the YAML parser then reads it, and names any syntax error). */
function parseJson(text: string): Documents | null {
  const start = /\S/.exec(text)?.index ?? -1;
  const first = text.charCodeAt(start);
  if (first !== 0x7b && first !== 0x5b) return null; // "{" or "["
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return null;
  }
  return { docs: [doc], lineOf: () => lineAt(text, start) };
}

function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = text.indexOf('\n'); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) line++;
  return line;
}

/** All documents of a YAML stream. */
function loadDocuments(text: string, source: string): Documents {
  try {
    const events = parseEvents(text, { filename: source });
    const docs = constructFromEvents(events, { source: text, filename: source });
    const lineStarts = [0];
    for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) lineStarts.push(i + 1);
    const lines: number[] = [];
    for (let i = 0; i < events.length; i++) {
      if (events[i]!.type !== EVENT_DOCUMENT) continue; // its root node follows
      const root = events[i + 1] as { start?: number; valueStart?: number } | undefined;
      const offset = root?.start ?? root?.valueStart ?? -1;
      lines.push(offset >= 0 ? lineOf(lineStarts, offset) : 1);
    }
    return { docs, lineOf: (doc) => lines[doc] ?? 1 };
  } catch (err) {
    if (err instanceof YAMLException && err.mark) {
      throw new Error(`${source}: YAML syntax error at line ${err.mark.line + 1}, column ${err.mark.column + 1}: ${err.reason}`);
    }
    throw new Error(`${source}: cannot parse: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function lineOf(lineStarts: readonly number[], offset: number): number {
  let lo = 0;
  let hi = lineStarts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (lineStarts[mid]! <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo + 1;
}
