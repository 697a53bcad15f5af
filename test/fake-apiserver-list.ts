/**
 * Lists of the fake API server, paginated as the real apiserver paginates
 * them (`limit` and `continue`, client-go's pager asks for 500 per page):
 * every page comes from the same consistent snapshot (the store's state at
 * the first page's resourceVersion), the continue token is base64 JSON
 * {v, rv, start} as the apiserver's etcd3 storage writes it, and a token whose
 * resourceVersion has been compacted away is refused with 410 Expired.
 */
import { RESOURCE_INFO, keyOf, type KubeObject, type ObjectStore, type Resource } from './fake-apiserver-store.ts';
import type { Matcher } from './fake-apiserver-selectors.ts';

export interface ListRequest {
  readonly resource: Resource;
  readonly query: URLSearchParams;
  readonly match: Matcher;
  readonly store: ObjectStore;
}

export type ListAnswer =
  { readonly ok: true; readonly body: Record<string, unknown> } | { readonly ok: false; readonly code: number; readonly message: string };

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
  let rv = r.store.resourceVersion;
  let start = '';
  if (token !== '') {
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
  const items = limit > 0 ? all.slice(0, limit) : all;
  const more = limit > 0 && all.length > limit;
  const metadata: Record<string, unknown> = { resourceVersion: String(rv) };
  if (more) {
    metadata['continue'] = encodeContinue(rv, keyOf(all[limit]!));
    if (!r.query.get('labelSelector') && !r.query.get('fieldSelector')) metadata['remainingItemCount'] = all.length - limit;
  }
  const bare = items.map(({ kind: _k, apiVersion: _a, ...rest }): Omit<KubeObject, 'kind' | 'apiVersion'> => rest);
  return { ok: true, body: { kind: `${info.kind}List`, apiVersion: info.apiVersion, metadata, items: bare } };
}
