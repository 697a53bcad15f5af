/**
 * One watch stream of the fake API server and URL routing. A watch answers
 * 200 with chunked NDJSON: replays logged changes after the requested
 * resourceVersion (or synthetic ADDEDs for the current state when it is
 * ""/"0"), then streams new ones. Selector transitions follow the apiserver's
 * watch cache: an object that starts matching is ADDED, one that stops
 * matching is DELETED (previous content, the change's resourceVersion).
 */
import type { ServerResponse } from 'node:http';
import { RESOURCE_INFO, RESOURCES, type KubeObject, type LogEntry, type ObjectStore, type Resource } from './fake-apiserver-store.ts';
import type { Matcher } from './fake-apiserver-selectors.ts';

export interface Route {
  readonly resource: Resource;
  /** Namespace of a namespaced path (/namespaces/{ns}/...), null for the all-namespaces path. */
  readonly namespace: string | null;
  /** The version asked for when it is not the resource's own (ServiceCIDRs as networking.k8s.io/v1beta1). */
  readonly apiVersion?: string;
}

/** Older versions of a resource the fake can serve (FakeApiServer.serviceCIDRVersions), by path. */
const OTHER_VERSIONS: Readonly<Record<string, { resource: Resource; apiVersion: string }>> = {
  '/apis/networking.k8s.io/v1beta1/servicecidrs': { resource: 'servicecidrs', apiVersion: 'networking.k8s.io/v1beta1' },
};

export function routeRequest(pathname: string): Route | null {
  const path = pathname.replace(/\/+$/, '');
  for (const resource of RESOURCES) {
    const info = RESOURCE_INFO[resource];
    if (path === `${info.prefix}/${resource}`) return { resource, namespace: null };
    const m = info.namespaced ? new RegExp(`^${info.prefix}/namespaces/([^/]+)/${resource}$`).exec(path) : null;
    if (m) return { resource, namespace: decodeURIComponent(m[1]!) };
  }
  const other = OTHER_VERSIONS[path];
  return other ? { ...other, namespace: null } : null;
}

const REASONS: Readonly<Record<number, string>> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  410: 'Expired',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

/** A failure Status as the apiserver sends it (HTTP error bodies, in-stream ERROR objects). */
export function statusObject(code: number, message: string): Record<string, unknown> {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason: REASONS[code] ?? 'Unknown', code };
}

type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

/** What a watcher with this matcher sees of a change (null: nothing). */
export function translate(entry: LogEntry, match: Matcher): { type: EventType; object: KubeObject } | null {
  const wasIn = entry.prev !== null && match(entry.prev);
  if (entry.type === 'DELETED') return wasIn ? { type: 'DELETED', object: entry.obj } : null;
  const isIn = match(entry.obj);
  if (isIn) return { type: wasIn ? 'MODIFIED' : 'ADDED', object: entry.obj };
  if (!wasIn) return null;
  const last = structuredClone(entry.prev!);
  last.metadata.resourceVersion = String(entry.rv);
  return { type: 'DELETED', object: last };
}

export interface WatchStream {
  readonly resource: Resource;
  send(entry: LogEntry): void;
  bookmark(rv: number): void;
  raw(text: string): void;
  /** Ends the stream cleanly (chunked terminator). */
  end(): void;
  /** Cuts the connection. */
  destroy(): void;
}

export interface StartWatchOptions {
  readonly res: ServerResponse;
  readonly route: Route;
  readonly query: URLSearchParams;
  /** The request's selectors, and its namespace for a namespaced path. */
  readonly match: Matcher;
  readonly store: ObjectStore;
  readonly expired: 'in-stream' | 'http';
  readonly fail: (code: number, message: string) => void;
}

/** Starts a watch; returns null when the request was answered with an error instead. */
export function startWatch(o: StartWatchOptions): WatchStream | null {
  const { res, route, store } = o;
  const info = RESOURCE_INFO[route.resource];
  const rvParam = o.query.get('resourceVersion') ?? '';
  const fromRv = rvParam === '' || rvParam === '0' ? null : Number(rvParam);
  if (fromRv !== null && !Number.isSafeInteger(fromRv)) {
    o.fail(400, `invalid resourceVersion "${rvParam}" for watch`);
    return null;
  }
  const expiredStatus = statusObject(410, `too old resource version: ${rvParam} (${store.floor})`);
  if (fromRv !== null && fromRv < store.floor && o.expired === 'http') {
    res.writeHead(410, { 'Content-Type': 'application/json' }).end(JSON.stringify(expiredStatus));
    return null;
  }
  res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' });
  res.flushHeaders();
  const write = (event: unknown): void => {
    if (!res.writableEnded && !res.destroyed) res.write(`${JSON.stringify(event)}\n`);
  };
  if (fromRv !== null && fromRv < store.floor) {
    write({ type: 'ERROR', object: expiredStatus });
    res.end();
    return null;
  }
  const visible = o.match;
  // Objects in the version asked for (the store keeps the resource's own).
  const asked = (obj: KubeObject): KubeObject => (route.apiVersion ? { ...obj, apiVersion: route.apiVersion } : obj);
  const send = (entry: LogEntry): void => {
    const ev = translate(entry, visible);
    if (ev) write({ ...ev, object: asked(ev.object) });
  };
  if (fromRv === null) {
    for (const obj of store.list(route.resource)) if (visible(obj)) write({ type: 'ADDED', object: asked(obj) });
  } else {
    for (const entry of store.since(route.resource, fromRv)) send(entry);
  }
  const bookmarks = o.query.get('allowWatchBookmarks') === 'true';
  // kube-apiserver's cacher sends a watch a bookmark only at a resourceVersion past the one it started from.
  const startRv = fromRv ?? store.resourceVersion;
  const timeoutSeconds = Number(o.query.get('timeoutSeconds') ?? '0');
  const timer = timeoutSeconds > 0 ? setTimeout(() => res.end(), timeoutSeconds * 1000) : null;
  res.on('close', () => {
    if (timer) clearTimeout(timer);
  });
  return {
    resource: route.resource,
    send,
    bookmark: (rv) => {
      if (bookmarks && rv > startRv)
        write({
          type: 'BOOKMARK',
          object: { kind: info.kind, apiVersion: route.apiVersion ?? info.apiVersion, metadata: { resourceVersion: String(rv) } },
        });
    },
    raw: (text) => {
      if (!res.writableEnded && !res.destroyed) res.write(text);
    },
    end: () => {
      if (!res.writableEnded) res.end();
    },
    destroy: () => {
      res.destroy();
    },
  };
}
