/**
 * Lists of the fake API server, answered as kube-apiserver answers them
 * (its cacher's shouldDelegateList and computeListLimit; the etcd3 store):
 * - resourceVersion unset: the current state (a consistent read), paginated
 *   with `limit` and `continue` (client-go's pager asks for 500 per page):
 *   every page comes from the same snapshot (the store's state at the first
 *   page's resourceVersion), the continue token is base64 JSON {v, rv, start}
 *   as the etcd3 storage writes it, and a token whose resourceVersion has been
 *   compacted away is refused with 410 Expired (and one sent with a
 *   resourceVersion other than "0" with 400, as the etcd3 store refuses it);
 * - resourceVersion "0": from the watch cache, which ignores `limit` (the
 *   whole list in one response, no continue token); without a watch cache
 *   (`watchCache: false`, kube-apiserver --watch-cache=false) as unset;
 * - resourceVersion N without `limit`: "not older than N", from the watch
 *   cache: the current state, or 504 "Too large resource version" (cause
 *   ResourceVersionTooLarge, Retry-After 1) when N is past the current one;
 * - resourceVersion N with `limit`: the legacy exact match, from etcd: the
 *   state at N, paginated, or 410 Expired when N was compacted away.
 */
import { RESOURCE_INFO, keyOf, type KubeObject, type ObjectStore, type Resource } from './fake-apiserver-store.ts';
import type { Matcher } from './fake-apiserver-selectors.ts';

export interface ListRequest {
  readonly resource: Resource;
  readonly query: URLSearchParams;
  readonly match: Matcher;
  readonly store: ObjectStore;
  /** Whether resourceVersion "0" is served from a watch cache (default true). */
  readonly watchCache?: boolean;
}

export type ListAnswer =
  | { readonly ok: true; readonly body: Record<string, unknown> }
  | {
      readonly ok: false;
      readonly code: number;
      readonly message: string;
      readonly details?: Record<string, unknown>;
      readonly headers?: Record<string, string>;
    };

interface ContinueToken {
  readonly v: string;
  readonly rv: number;
  /** First key of the next page (inclusive). */
  readonly start: string;
}

const TOKEN_VERSION = 'meta.k8s.io/v1';

function encodeContinue(rv: number, start: string): string {
  return Buffer.from(JSON.stringify({ v: TOKEN_VERSION, rv, start } satisfies ContinueToken)).toString('base64url');
}

function decodeContinue(token: string): ContinueToken | null {
  try {
    const t = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as Partial<ContinueToken>;
    if (t.v !== TOKEN_VERSION || !Number.isSafeInteger(t.rv) || typeof t.start !== 'string') return null;
    return t as ContinueToken;
  } catch {
    return null;
  }
}

/** One page (or the whole list without `limit`) of a list request. */
export function listPage(r: ListRequest): ListAnswer {
  const info = RESOURCE_INFO[r.resource];
  const limitParam = r.query.get('limit');
  const limit = limitParam === null || limitParam === '' ? 0 : Number(limitParam);
  if (!Number.isSafeInteger(limit) || limit < 0) return { ok: false, code: 400, message: `invalid limit "${limitParam}"` };
  const token = r.query.get('continue') ?? '';
  const rvParam = r.query.get('resourceVersion') ?? '';
  let rv = r.store.resourceVersion;
  let start = '';
  let pageLimit = limit;
  if (token === '' && rvParam === '0' && r.watchCache !== false) pageLimit = 0;
  else if (token === '' && rvParam !== '' && rvParam !== '0') {
    const asked = Number(rvParam);
    if (!Number.isSafeInteger(asked) || asked < 0) return { ok: false, code: 400, message: `invalid resourceVersion "${rvParam}"` };
    if (asked > rv)
      return {
        ok: false,
        code: 504,
        message: `Timeout: Too large resource version: ${asked}, current: ${rv}`,
        details: { causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }], retryAfterSeconds: 1 },
        headers: { 'Retry-After': '1' },
      };
    if (limit > 0) {
      if (asked < r.store.floor) return { ok: false, code: 410, message: `The resourceVersion for the provided list is too old.` };
      rv = asked;
    }
  }
  if (token !== '') {
    if (rvParam !== '' && rvParam !== '0') return { ok: false, code: 400, message: 'specifying resource version is not allowed when using continue' };
    const t = decodeContinue(token);
    if (!t) return { ok: false, code: 400, message: `continue key is not valid: ${token.slice(0, 40)}` };
    if (t.rv < r.store.floor) {
      return {
        ok: false,
        code: 410,
        message:
          'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.',
      };
    }
    rv = t.rv;
    start = t.start;
  }
  const all = r.store.listAt(r.resource, rv).filter((o) => keyOf(o) >= start && r.match(o));
  const items = pageLimit > 0 ? all.slice(0, pageLimit) : all;
  const more = pageLimit > 0 && all.length > pageLimit;
  const metadata: Record<string, unknown> = { resourceVersion: String(rv) };
  if (more) {
    metadata['continue'] = encodeContinue(rv, keyOf(all[pageLimit]!));
    if (!r.query.get('labelSelector') && !r.query.get('fieldSelector')) metadata['remainingItemCount'] = all.length - pageLimit;
  }
  const bare = items.map(({ kind: _k, apiVersion: _a, ...rest }): Omit<KubeObject, 'kind' | 'apiVersion'> => rest);
  return { ok: true, body: { kind: `${info.kind}List`, apiVersion: info.apiVersion, metadata, items: bare } };
}
