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
 */
import { ApiException, type KubeConfig } from '@kubernetes/client-node';
import { isObject, type RequestObserver } from './kube-client.ts';
import { apiUrl } from './kube-http.ts';
import { failureMessage, kubeRequest } from './kube-request.ts';

export interface RawList {
  readonly metadata: { readonly resourceVersion?: string };
  readonly items: unknown[];
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
  for (;;) {
    const url = apiUrl(cluster.server, path, query);
    if (paged) url.searchParams.set('limit', String(pageSize));
    if (next) url.searchParams.set('continue', next);
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
  }
  return { metadata: rv === undefined ? {} : { resourceVersion: rv }, items };
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
