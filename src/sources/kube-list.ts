/**
 * The list half of an informer: a list call that returns the server's JSON
 * untouched. The generated API clients deserialise lists into model classes
 * (unknown fields dropped, timestamps turned into Dates) while watch events
 * are raw JSON; listing raw gives both paths the same plain-JSON shape. It
 * pages as client-go's pager does (limit 500, following `continue`), so a
 * large cluster's first list does not arrive as one huge response; a continue
 * token that expired mid-list (410) falls back to one full list, as
 * client-go's ListPager (FullListIfExpired) does. Every page is reported to
 * the observer (rest_client metrics).
 *
 * listSynced asks for the resourceVersion client-go's reflector asks for
 * (Reflector.list, relistResourceVersion), so that the API server answers
 * from its watch cache and not with a read from etcd: the first list at "0"
 * (the cache ignores the limit: one response); every later one (after a
 * watch error, an expired watch, an informer restart) at the last
 * resourceVersion the informer saw, list or watch event or bookmark
 * ("not older than": the cache waits until it has it), unpaged, since a limit
 * with such a resourceVersion is read from etcd; and only when the server no
 * longer has it (410) or does not have it yet (504 "Too large resource
 * version": an API server behind its peers) a consistent read ("", paged),
 * at once. A server without a watch cache answers "0" paged; its later lists
 * page too.
 */
import { ApiException, type KubeConfig } from '@kubernetes/client-node';
import { isObject, statusOf, type RequestObserver } from './kube-client.ts';
import { apiUrl } from './kube-http.ts';
import { failureMessage, kubeRequest } from './kube-request.ts';

export interface RawList {
  readonly metadata: { readonly resourceVersion?: string };
  readonly items: unknown[];
  /** The server answered in pages (a continue token came). */
  readonly paged?: boolean;
}

/** client-go's page size (k8s.io/client-go/tools/pager defaultPageSize). */
export const LIST_PAGE_SIZE = 500;

export interface ListOptions {
  /** Objects per page (default LIST_PAGE_SIZE; 0 lists everything at once). */
  readonly pageSize?: number;
  readonly observe?: RequestObserver;
  /**
   * What to keep of each item, applied as its page arrives: a large list then holds what is kept of every page, not
   * every page's whole objects until the last one (at 10,000 Services and slices, tens of MB of managedFields and the
   * like at the first sync's peak). Default: the item as it is.
   */
  readonly keep?: (item: unknown) => unknown;
}

/** The whole list, page by page (see the file comment); items and the resourceVersion of the snapshot the pages came from. */
export async function listRaw(
  kc: KubeConfig,
  path: string,
  query: Readonly<Record<string, string | undefined>>,
  signal: AbortSignal,
  opts: ListOptions = {},
): Promise<RawList> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('kubeconfig has no current cluster');
  const pageSize = opts.pageSize ?? LIST_PAGE_SIZE;
  const items: unknown[] = [];
  let rv: string | undefined;
  let next = '';
  let paged = pageSize > 0;
  let continued = false;
  for (;;) {
    const url = apiUrl(cluster.server, path, query);
    if (paged) url.searchParams.set('limit', String(pageSize));
    if (next) {
      // The token carries the snapshot's resourceVersion; the API server refuses another one beside it ("specifying
      // resource version is not allowed when using continue"), so client-go's pager clears it on every next page.
      url.searchParams.delete('resourceVersion');
      url.searchParams.delete('resourceVersionMatch');
      url.searchParams.set('continue', next);
    }
    const resp = await kubeRequest(kc, { method: 'GET', url, signal, observe: opts.observe });
    if (resp.status === 410 && next) {
      // The snapshot behind the continue token is gone: start over with one full list (client-go's FullListIfExpired).
      items.length = 0;
      next = '';
      paged = false;
      continue;
    }
    const page = parseList(path, resp.status, resp.text, resp.headers);
    for (const item of page.items) items.push(opts.keep ? opts.keep(item) : item);
    rv = page.resourceVersion;
    next = paged ? page.continue : '';
    if (!next) break;
    continued = true;
  }
  return { metadata: rv === undefined ? {} : { resourceVersion: rv }, items, paged: continued };
}

/** What an informer keeps between its lists, as client-go's Reflector does (newListState; listSynced updates it). */
export interface ListState {
  /** The resourceVersion of the last list, watch event or bookmark ("" before the first list): lastSyncResourceVersion. */
  resourceVersion: string;
  /** A list at it was refused (410, too large): the next lists ask "" until one succeeds (isLastSyncResourceVersionUnavailable). */
  unavailable: boolean;
  /** The list at "0" came paged (no watch cache): every list pages (paginatedResult). */
  paginated: boolean;
}

export function newListState(): ListState {
  return { resourceVersion: '', unavailable: false, paginated: false };
}

/** The resourceVersion the next list asks for (client-go's relistResourceVersion). */
export function relistResourceVersion(s: ListState): string {
  if (s.unavailable) return '';
  return s.resourceVersion === '' ? '0' : s.resourceVersion;
}

/**
 * The server no longer has the resourceVersion asked for (410 Expired or Gone), or does not have it yet (a Status
 * with cause ResourceVersionTooLarge, or from servers before 1.18.6 a 504 saying "Too large resource version"):
 * client-go's isExpiredError and isTooLargeResourceVersionError.
 */
export function resourceVersionUnavailable(err: unknown): boolean {
  const status = statusOf(err);
  if (status === 410) return true;
  const body: unknown = err instanceof ApiException ? err.body : undefined;
  if (!isObject(body)) return false;
  const details = isObject(body['details']) ? body['details'] : {};
  const causes = Array.isArray(details['causes']) ? details['causes'].filter(isObject) : [];
  if (causes.some((c) => c['reason'] === 'ResourceVersionTooLarge')) return true;
  if (status !== 504) return false;
  return (
    causes.some((c) => c['message'] === 'Too large resource version') ||
    (typeof body['message'] === 'string' && body['message'].includes('Too large resource version'))
  );
}

/** One informer list as client-go's Reflector.list makes it (see the file comment); updates the state. */
export async function listSynced(
  kc: KubeConfig,
  path: string,
  query: Readonly<Record<string, string | undefined>>,
  signal: AbortSignal,
  state: ListState,
  opts: ListOptions = {},
): Promise<RawList> {
  const at = (rv: string): Promise<RawList> =>
    listRaw(kc, path, { ...query, resourceVersion: rv === '' ? undefined : rv }, signal, {
      ...opts,
      // A limit with a resourceVersion other than "" or "0" is an exact read from etcd; without one the watch cache answers.
      pageSize: rv === '' || rv === '0' || state.paginated ? (opts.pageSize ?? LIST_PAGE_SIZE) : 0,
    });
  let rv = relistResourceVersion(state);
  let list: RawList;
  try {
    list = await at(rv);
  } catch (err) {
    if (!resourceVersionUnavailable(err)) throw err;
    state.unavailable = true;
    rv = relistResourceVersion(state);
    list = await at(rv);
  }
  if (rv === '0' && list.paged) state.paginated = true;
  state.unavailable = false;
  if (list.metadata.resourceVersion) state.resourceVersion = list.metadata.resourceVersion;
  return list;
}

function parseList(
  path: string,
  status: number,
  text: string,
  headers: Record<string, string>,
): { items: unknown[]; resourceVersion?: string; continue: string } {
  if (status < 200 || status > 299) {
    const { message, body } = failureMessage(text);
    throw new ApiException(status, `list ${path}: ${message}`, body, headers);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`list ${path}: response is not JSON (${text.slice(0, 100)})`);
  }
  if (!isObject(parsed) || !Array.isArray(parsed['items'])) throw new Error(`list ${path}: response has no items array`);
  const md = isObject(parsed['metadata']) ? parsed['metadata'] : {};
  const rv = typeof md['resourceVersion'] === 'string' ? md['resourceVersion'] : undefined;
  const cont = typeof md['continue'] === 'string' ? md['continue'] : '';
  return { items: parsed['items'], ...(rv === undefined ? {} : { resourceVersion: rv }), continue: cont };
}
