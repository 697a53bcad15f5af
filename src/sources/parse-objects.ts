/**
 * Text of one manifest file -> the Services, EndpointSlices and Nodes in it.
 * The file may be multi-document YAML, a JSON object, or a List (kind "List"
 * or "<Kind>List" with items), in YAML or JSON, as `kubectl get -o yaml`
 * writes them. Pure: reading the file is the caller's business.
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
  problems: ObjectProblem[];
}

const WANTED: Readonly<Record<string, keyof Omit<ParsedObjects, 'problems'>>> = {
  'v1/Service': 'services',
  'discovery.k8s.io/v1/EndpointSlice': 'slices',
  'v1/Node': 'nodes',
};
const NAMESPACED = new Set(['services', 'slices']);

export function parseObjects(text: string, source: string): ParsedObjects {
  const out: ParsedObjects = { services: [], slices: [], nodes: [], problems: [] };
  const { docs, lines } = loadDocuments(text, source);
  docs.forEach((doc, i) => {
    if (doc === null || doc === undefined) return; // empty document ("---" at the end, comments only)
    const where = `${source}:${lines[i] ?? 1} (document ${i + 1})`;
    if (!isRecord(doc)) return void out.problems.push(docProblem(where, `not an object (got ${Array.isArray(doc) ? 'a list' : typeof doc})`));
    const kind = doc['kind'];
    if (typeof kind === 'string' && kind.endsWith('List') && Array.isArray(doc['items'])) {
      // Items of a typed list (ServiceList) may omit kind and apiVersion: the list's own imply them.
      const itemKind = kind === 'List' ? undefined : kind.slice(0, -'List'.length);
      doc['items'].forEach((item: unknown, j: number) => {
        const filled = isRecord(item) && itemKind !== undefined ? { kind: itemKind, apiVersion: doc['apiVersion'], ...item } : item;
        take(filled, `${where} item ${j + 1}`, out);
      });
      return;
    }
    take(doc, where, out);
  });
  return out;
}

function take(obj: unknown, where: string, out: ParsedObjects): void {
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
  out[bucket].push(obj);
}

function docProblem(where: string, reason: string, kind = 'Document'): ObjectProblem {
  return { kind, namespace: '', name: where, field: '', reason };
}

/** All documents, plus the 1-based line where each one's content starts. */
function loadDocuments(text: string, source: string): { docs: unknown[]; lines: number[] } {
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
    return { docs, lines };
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
