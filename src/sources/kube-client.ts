/**
 * The two HTTP calls an informer makes, on client-node's own HTTP stack and
 * authentication (KubeConfig.applySecurityAuthentication):
 * - listRaw: a list call that returns the server's JSON untouched. The
 *   generated API clients deserialise lists into model classes (unknown
 *   fields dropped, timestamps turned into Dates) while watch events are raw
 *   JSON; listing raw gives both paths the same plain-JSON shape.
 * - GuardedWatch: client-node's Watch, hardened for ListWatch. It asks for
 *   bookmarks, drops events that would crash ListWatch's async handler
 *   (unhandled rejections), reports in-stream error Statuses that ListWatch
 *   ignores, turns a failing (re)watch into onDead instead of a lost
 *   rejection, and once closed aborts its streams and starts no new one
 *   (ListWatch may still start a watch after stop() when stop() falls into its
 *   reconnect delay).
 */
import { ApiException, HttpMethod, IsomorphicFetchHttpLibrary, RequestContext, Watch, type KubeConfig } from '@kubernetes/client-node';

export interface RawList {
  readonly metadata: { readonly resourceVersion?: string };
  readonly items: unknown[];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Has the metadata ListWatch dereferences (name, optional namespace). */
export function isWellFormed(obj: unknown): boolean {
  const md = isObject(obj) ? obj['metadata'] : undefined;
  return isObject(md) && typeof md['name'] === 'string' && md['name'] !== '';
}

export async function listRaw(kc: KubeConfig, path: string, query: Readonly<Record<string, string | undefined>>, signal: AbortSignal): Promise<RawList> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('kubeconfig has no current cluster');
  const url = new URL(cluster.server.replace(/\/+$/, '') + path);
  for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, v);
  const ctx = new RequestContext(url.toString(), HttpMethod.GET);
  ctx.setHeaderParam('Accept', 'application/json');
  await kc.applySecurityAuthentication(ctx);
  ctx.setSignal(signal);
  const resp = await new IsomorphicFetchHttpLibrary().send(ctx).toPromise();
  const text = await resp.body.text();
  if (resp.httpStatusCode < 200 || resp.httpStatusCode > 299) {
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    const message = isObject(body) && typeof body['message'] === 'string' ? body['message'] : text.slice(0, 200);
    throw new ApiException(resp.httpStatusCode, `list ${path}: ${message}`, body, resp.headers);
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
  return { metadata: rv === undefined ? {} : { resourceVersion: rv }, items: parsed['items'] };
}

export interface GuardedWatchHooks {
  /** Any line received (events and bookmarks alike). */
  onActivity(): void;
  /** The informer cannot go on by itself: a (re)watch could not be started or ListWatch's restart logic failed. */
  onDead(err: unknown): void;
  /** Something dropped or ignored, for logs. */
  onProblem(message: string, err?: unknown): void;
}

type WatchCallback = (phase: string, apiObj: any, watchObj?: any) => void;

const OBJECT_EVENTS = new Set(['ADDED', 'MODIFIED', 'DELETED']);

export class GuardedWatch extends Watch {
  private readonly hooks: GuardedWatchHooks;
  private readonly streams = new Set<AbortController>();
  private closed = false;

  constructor(kc: KubeConfig, hooks: GuardedWatchHooks) {
    super(kc);
    this.hooks = hooks;
  }

  /** Aborts open streams; later watch() calls do nothing (their done is never called). */
  close(): void {
    this.closed = true;
    for (const c of this.streams) c.abort();
    this.streams.clear();
  }

  override async watch(path: string, queryParams: Record<string, string | number | boolean | undefined>, callback: WatchCallback, done: (err: any) => void): Promise<AbortController> {
    if (this.closed) return new AbortController();
    const guardedCallback: WatchCallback = (phase, obj, watchObj) => {
      if (this.closed) return;
      this.hooks.onActivity();
      if (!this.acceptable(phase, obj)) return;
      try {
        const result: unknown = callback(phase, obj, watchObj);
        if (result instanceof Promise) result.catch((err: unknown) => this.hooks.onProblem(`watch ${path}: ${phase} handler failed`, err));
      } catch (err) {
        this.hooks.onProblem(`watch ${path}: ${phase} handler failed`, err);
      }
    };
    let controller: AbortController | null = null;
    const guardedDone = (err: unknown): void => {
      if (controller) this.streams.delete(controller);
      if (this.closed) return;
      try {
        const result: unknown = done(err);
        if (result instanceof Promise) result.catch((e: unknown) => this.hooks.onDead(e));
      } catch (e) {
        this.hooks.onDead(e);
      }
    };
    try {
      controller = await super.watch(path, { ...queryParams, allowWatchBookmarks: true }, guardedCallback, guardedDone);
    } catch (err) {
      this.hooks.onDead(err);
      return new AbortController();
    }
    if (this.closed) controller.abort();
    else if (!controller.signal.aborted) this.streams.add(controller);
    return controller;
  }

  private acceptable(phase: string, obj: unknown): boolean {
    if (OBJECT_EVENTS.has(phase)) {
      if (isWellFormed(obj)) return true;
      this.hooks.onProblem(`watch: dropped malformed ${phase} event (object without metadata.name)`);
      return false;
    }
    if (phase === 'BOOKMARK') {
      if (isObject(obj) && isObject(obj['metadata'])) return true;
      this.hooks.onProblem('watch: dropped malformed BOOKMARK event');
      return false;
    }
    if (phase === 'ERROR') {
      if (!isObject(obj)) {
        this.hooks.onProblem('watch: dropped malformed ERROR event');
        return false;
      }
      if (obj['code'] !== 410) this.hooks.onProblem(`watch: server sent error status ${String(obj['code'])}: ${String(obj['message'])}`);
      return true;
    }
    this.hooks.onProblem(`watch: dropped event of unknown type ${JSON.stringify(phase)}`);
    return false;
  }
}
