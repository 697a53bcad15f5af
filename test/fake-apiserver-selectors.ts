/**
 * Label and field selectors for the fake API server, with the apiserver's
 * string syntax and errors. Labels: comma-joined `key`, `!key`, `key=value`,
 * `key==value`, `key!=value` (set-based `in`/`notin` are refused as
 * unsupported here). Fields: `path=value`, `path==value`, `path!=value` on the
 * field labels the resource supports (anything else is the apiserver's
 * "field label not supported" 400).
 */

export type Matcher = (obj: unknown) => boolean;

export class SelectorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SelectorError';
  }
}

const LABEL_KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

function labelsOf(obj: unknown): Record<string, string> {
  const labels = (obj as { metadata?: { labels?: unknown } } | null)?.metadata?.labels;
  return labels && typeof labels === 'object' ? (labels as Record<string, string>) : {};
}

function terms(selector: string): string[] {
  return selector
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
}

function checkKey(key: string, selector: string): string {
  if (!LABEL_KEY.test(key)) throw new SelectorError(`unable to parse requirement: invalid label key "${key}" in selector "${selector}"`);
  return key;
}

export function parseLabelSelector(selector: string): Matcher {
  const reqs: Matcher[] = [];
  for (const term of terms(selector)) {
    if (/\s(in|notin)\s*\(/.test(term) || term.includes('(')) {
      throw new SelectorError(`set-based label selector "${term}" is not supported by the fake apiserver`);
    }
    let m: RegExpMatchArray | null;
    if ((m = /^!\s*(.+)$/.exec(term))) {
      const key = checkKey(m[1]!.trim(), selector);
      reqs.push((o) => !(key in labelsOf(o)));
    } else if ((m = /^([^=!]+)!=(.*)$/.exec(term))) {
      const key = checkKey(m[1]!.trim(), selector);
      const value = m[2]!.trim();
      reqs.push((o) => labelsOf(o)[key] !== value);
    } else if ((m = /^([^=!]+)==?(.*)$/.exec(term))) {
      const key = checkKey(m[1]!.trim(), selector);
      const value = m[2]!.trim();
      reqs.push((o) => labelsOf(o)[key] === value);
    } else {
      const key = checkKey(term, selector);
      reqs.push((o) => key in labelsOf(o));
    }
  }
  return (o) => reqs.every((r) => r(o));
}

/** The value of a dotted field path as the apiserver's field label functions render it ("" when absent). */
function fieldValue(obj: unknown, path: string): string {
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (!cur || typeof cur !== 'object') return '';
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur === undefined || cur === null ? '' : String(cur);
}

export function parseFieldSelector(selector: string, supported: readonly string[]): Matcher {
  const reqs: Matcher[] = [];
  for (const term of terms(selector)) {
    const m = /^([^=!]+)(!=|==|=)(.*)$/.exec(term);
    if (!m) throw new SelectorError(`invalid field selector term "${term}": expected field=value or field!=value`);
    const field = m[1]!.trim();
    const op = m[2]!;
    const value = m[3]!.trim();
    if (!supported.includes(field)) throw new SelectorError(`field label not supported: ${field}`);
    reqs.push(op === '!=' ? (o) => fieldValue(o, field) !== value : (o) => fieldValue(o, field) === value);
  }
  return (o) => reqs.every((r) => r(o));
}

/** Combines the query's selectors (either may be absent) into one matcher. */
export function selectorMatcher(query: URLSearchParams, supportedFields: readonly string[]): Matcher {
  const label = parseLabelSelector(query.get('labelSelector') ?? '');
  const field = parseFieldSelector(query.get('fieldSelector') ?? '', supportedFields);
  return (o) => label(o) && field(o);
}
