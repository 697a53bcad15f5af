/**
 * The watch half of an informer, and what both halves share (the list half
 * is kube-list.ts), with the kubeconfig's TLS and credentials as client-node
 * applies them (KubeConfig.applyToHTTPSOptions, kube-http.ts):
 * - GuardedWatch: client-node's Watch, its stream made by kube-watch.ts (the
 *   same semantics on Node's http client), hardened for ListWatch. It asks for
 *   bookmarks and for the server to end the watch after 5 to 10 minutes, as
 *   client-go's reflector does (watchTimeoutSeconds), and gives up a watch
 *   that hears nothing for WATCH_IDLE_MS; drops events that would crash ListWatch's async handler
 *   (unhandled rejections), ends the watch with an error on an in-stream
 *   error Status other than 410 (which ListWatch ignores; client-go's
 *   reflector lists again, and so does the informer here), asks again, after
 *   the informer's back-off and from the same resourceVersion, for a watch
 *   refused or turned away (watchRetriable: connection refused, 429, a 5xx
 *   with Retry-After, a connection reset under the request) where ListWatch
 *   would end the informer and list again,
 *   ends with an error a watch that ended within a second with nothing
 *   received (client-go: a very short watch; the informer lists again),
 *   turns a failing (re)watch into onDead instead of a lost
 *   rejection, and once closed aborts its streams and starts no new one
 *   (ListWatch may still start a watch after stop() when stop() falls into its
 *   reconnect delay).
 * - RequestRecord: every request reported to an optional observer, with
 *   client-go's rest_client metric labels (code, method, host; latency for
 *   lists only, as client-go observes it in Request.request and not in
 *   Request.Watch).
 * - tlsProblem: a TLS failure in one sentence naming the CA it was checked
 *   against, or the client certificate and key that cannot be used.
 */
import { ApiException, Watch, type KubeConfig } from '@kubernetes/client-node';
import { retryAfterSeconds } from '../retry-after.ts';
import { httpWatch, type StreamCallback, type WatchCallback } from './kube-watch.ts';

/** One HTTP request as client-go's rest_client metrics see it. */
export interface RequestRecord {
  /** HTTP method ("GET", "POST"). */
  readonly method: string;
  /** host[:port] of the API server as written in the kubeconfig. */
  readonly host: string;
  /** HTTP status code, or "<error>" when no response came (client-go's sanitize). */
  readonly code: string;
  /** Request latency (absent for watches, which client-go does not time). */
  readonly seconds?: number;
}

export type RequestObserver = (r: RequestRecord) => void;

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Has the metadata ListWatch dereferences (name, optional namespace). */
export function isWellFormed(obj: unknown): boolean {
  const md = isObject(obj) ? obj['metadata'] : undefined;
  return isObject(md) && typeof md['name'] === 'string' && md['name'] !== '';
}

/** host[:port] of a server URL as written (Go's url.Host keeps an explicit default port; WHATWG URL drops it). */
export function serverHost(server: string): string {
  return /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(server)?.[1] ?? 'none';
}

/** The status code of a failed request (ApiException.code, Watch's statusCode), or null for a transport error. */
export function statusOf(err: unknown): number | null {
  if (err instanceof ApiException) return err.code;
  const code = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof code === 'number' ? code : null;
}

/** The longest Retry-After honoured (a larger one waits this long). */
export const RETRY_AFTER_MAX_MS = 60_000;

/**
 * How long the API server asked the client to wait before trying again: its Retry-After seconds on a 429 (API
 * priority and fairness, max-inflight) or a 5xx, as client-go's checkWait reads it (a whole number of seconds above
 * zero; an HTTP date is not read); null when it asked nothing.
 */
export function retryAfterMs(err: unknown): number | null {
  const status = statusOf(err);
  if (status === null || (status !== 429 && Math.floor(status / 100) !== 5)) return null;
  const headers = (err as { headers?: unknown }).headers;
  const seconds = retryAfterSeconds(headers && typeof headers === 'object' ? (headers as Record<string, unknown>)['retry-after'] : undefined);
  return seconds === null ? null : Math.min(seconds * 1000, RETRY_AFTER_MAX_MS);
}

const TLS_TRUST_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
]);

/**
 * A sentence naming a TLS failure (certificate not trusted by the configured
 * CA, not valid for the host, expired), or null for any other error.
 */
export function tlsProblem(err: unknown, kc: KubeConfig): string | null {
  let cause: unknown = err;
  for (let i = 0; i < 4 && cause; i++) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === 'string') {
      const cluster = kc.getCurrentCluster();
      const server = cluster?.server ?? '?';
      const ca = cluster?.caFile
        ? `the certificate-authority file ${cluster.caFile}`
        : cluster?.caData
          ? 'the certificate-authority-data of the kubeconfig'
          : "the system's CA bundle (no certificate-authority configured)";
      const detail = `${String((cause as Error).message).split(';')[0]} (${code})`;
      if (TLS_TRUST_CODES.has(code)) return `TLS: the API server ${server} presented a certificate that ${ca} does not trust: ${detail}`;
      if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `TLS: the API server's certificate is not valid for the host of ${server}: ${detail}`;
      if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID')
        return `TLS: the API server's certificate (${server}) is outside its validity period: ${detail}`;
      const user = kc.getCurrentUser();
      if (code.startsWith('ERR_OSSL_') && (user?.certFile || user?.certData || user?.keyFile || user?.keyData)) {
        // Raised before a byte is sent: the client certificate or key cannot be used (a CA that is not PEM is not
        // refused there; it trusts nothing, and the server's certificate is then not trusted, above).
        const files = [user.certFile && `client-certificate ${user.certFile}`, user.keyFile && `client-key ${user.keyFile}`].filter(Boolean);
        const what = files.length ? files.join(' and ') : `client-certificate-data and client-key-data of user ${user.name}`;
        // OpenSSL's "error:05800074:x509 certificate routines::" prefix says nothing to an operator.
        return `TLS: the ${what} cannot be used: ${detail.replace(/^error:[0-9A-Fa-f]+:[^:]*:[^:]*:/, '')}`;
      }
    }
    cause = (cause as { cause?: unknown }).cause;
  }
  return null;
}

export interface GuardedWatchHooks {
  /** Any line received (events and bookmarks alike). */
  onActivity(): void;
  /** The informer cannot go on by itself: a (re)watch could not be started or ListWatch's restart logic failed. */
  onDead(err: unknown): void;
  /** Something dropped or ignored, for logs. */
  onProblem(message: string, err?: unknown): void;
  /** The resourceVersion of each event and bookmark received (client-go's setLastSyncResourceVersion). */
  onResourceVersion?(resourceVersion: string): void;
  /** Every watch request sent, with its answer (rest_client_requests_total). */
  observe?: RequestObserver;
  /** What an ADDED/MODIFIED/DELETED object becomes before the callback sees it (the informer keeps that: api-source trims it). */
  retain?: (obj: Record<string, unknown>) => Record<string, unknown>;
  /**
   * A watch that could not be made for a reason worth asking again (watchRetriable): resolves true when it may be
   * asked again, from the same resourceVersion, false when it never will (the informer is being replaced). Without
   * this hook such a watch ends as any other failure does (ListWatch reports it and the informer lists again).
   */
  backOff?: (err: unknown) => Promise<boolean>;
  /** A watch request was answered with its stream (HTTP 200): the API server answers. */
  onWatching?: () => void;
  /** A watch that ends sooner than this after its request, nothing received, is an error (default VERY_SHORT_WATCH_MS; 0: never). */
  veryShortMs?: number;
}

const OBJECT_EVENTS = new Set(['ADDED', 'MODIFIED', 'DELETED']);

/** client-go's rest client asks again at most this many times for one request (maxRetries): a Retry-After, a reset. */
export const RETRY_AFTER_TRIES = 10;

/**
 * The connection was refused (no API server listening): Node's ECONNREFUSED (also the code of the AggregateError it
 * raises when every address of a name refused), or an error caused by one.
 */
export function isConnectionRefused(err: unknown): boolean {
  for (let e = err, i = 0; e && typeof e === 'object' && i < 4; e = (e as { cause?: unknown }).cause, i++)
    if ((e as { code?: unknown }).code === 'ECONNREFUSED') return true;
  return false;
}

/** The connection failed under the request (reset, closed before the answer, broken pipe): client-go's net.IsProbableEOF. */
export function isProbableEOF(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ECONNRESET' || code === 'EPIPE';
}

/**
 * Whether a watch that failed so is asked again, from the same resourceVersion, instead of the informer listing
 * again; `tries` counts the watch's consecutive failures its rest client would have retried. As client-go: its
 * reflector retries a watch refused (connection refused: "most likely we will be able to restart watch where we
 * ended") or answered 429 (API priority and fairness, a watch cache still initialising, an API server shutting down)
 * with its back-off (Reflector.watch, isWatchErrorRetriable), and its rest client asks again, up to 10 times, for a
 * watch a 5xx turned away with a Retry-After (checkWait) or whose connection failed under the request (a load
 * balancer whose backend went away; Request.Watch, net.IsProbableEOF), after which the reflector lists again.
 * Anything else (a 410 is the stream's, not an error here; 403, 500 and 503 without Retry-After, an ERROR event, a
 * stream cut after it began) is followed by a list.
 */
export function watchRetriable(err: unknown, tries: number): boolean {
  if (isConnectionRefused(err)) return true;
  const status = statusOf(err);
  if (status === 429) return true;
  const turnedAway = status !== null ? status >= 500 && retryAfterMs(err) !== null : isProbableEOF(err);
  return turnedAway && tries < RETRY_AFTER_TRIES;
}

/**
 * A watch that ends sooner than this after its request, nothing received, is an error (client-go's handleAnyWatch:
 * VeryShortWatchError), and the informer lists again: something ends every watch before it carries anything (a
 * watch cache going unready, a proxy that does not pass a stream on), and a watch made again and again would never
 * see a change while the informer looked healthy.
 */
export const VERY_SHORT_WATCH_MS = 1000;

/** A watch the API server answered and ended within VERY_SHORT_WATCH_MS, nothing sent (client-go's VeryShortWatchError). */
export class VeryShortWatchError extends Error {
  constructor(path: string) {
    super(`very short watch: the API server ended the watch of ${path} within a second, nothing sent`);
    this.name = 'VeryShortWatchError';
  }
}

/** The API server answered a request (its status line came) and the response was cut before its end. */
export class CutResponseError extends Error {
  readonly status: number;
  constructor(status: number, cause: unknown) {
    super(`HTTP ${status} response cut before its end`, { cause });
    this.name = 'CutResponseError';
    this.status = status;
  }
}

/** Node's codes for a request the API server did not answer: refused, reset or closed first, timed out, no such name, no route. */
const NO_ANSWER_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ECONNABORTED',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENETDOWN',
]);

/**
 * Whether the API server answered the request that failed so, and so did work a retry asks of it again: an HTTP error
 * status (an ERROR event's code too), a watch it ended at once (VeryShortWatchError), a response that does not
 * decode or was cut after its status (CutResponseError), a TLS handshake it made, anything not known as no answer.
 * Not: a connection refused, reset or closed before an answer, a timeout (a list page's, the watchdog's), a name that
 * does not resolve, no route (NO_ANSWER_CODES, on the error, its causes or an AggregateError's errors; any failed
 * connect), nor a file the kubeconfig names that could not be read (nothing was sent).
 */
export function serverAnswered(err: unknown): boolean {
  return answeredWalk(err, 0);
}

function answeredWalk(err: unknown, depth: number): boolean {
  if (typeof err !== 'object' || err === null || depth > 4) return true;
  if (statusOf(err) !== null || err instanceof CutResponseError || err instanceof VeryShortWatchError) return true;
  const e = err as { code?: unknown; name?: unknown; syscall?: unknown; path?: unknown; errors?: unknown; cause?: unknown };
  if (typeof e.code === 'string' && NO_ANSWER_CODES.has(e.code)) return false;
  if (e.name === 'TimeoutError' || e.syscall === 'connect' || e.syscall === 'getaddrinfo') return false;
  // A file system error (ENOENT, EACCES on a certificate-authority, client-certificate or key file).
  if (typeof e.code === 'string' && typeof e.syscall === 'string' && typeof e.path === 'string') return false;
  if (Array.isArray(e.errors) && e.errors.some((x) => !answeredWalk(x, depth + 1))) return false;
  return e.cause === undefined ? true : answeredWalk(e.cause, depth + 1);
}

/** How long a watch request waits for its response (client-node's Watch.requestTimeoutMs). */
export const WATCH_RESPONSE_TIMEOUT_MS = 30_000;

/** client-go's minWatchTimeout: a watch asks the API server to end it after 5 to 10 minutes (watchTimeoutSeconds). */
export const MIN_WATCH_TIMEOUT_S = 300;

/**
 * The timeoutSeconds a watch asks for, as client-go's Reflector.watch draws it: minWatchTimeout x (1 + rand), so the
 * watches of a fleet that started together do not all end together. The API server ends the watch then (with a
 * bookmark 2 s before, when it sends bookmarks) and ListWatch makes it again from its resourceVersion.
 */
export function watchTimeoutSeconds(random: () => number = Math.random): number {
  return Math.floor(MIN_WATCH_TIMEOUT_S * (1 + random()));
}

/**
 * How long a watch may go without a byte before it is given up and made again from its resourceVersion. The API
 * server's watch cache sends a watch that asked for bookmarks one about every minute (kube-apiserver's cacher,
 * bookmarkFrequency) once its resourceVersion moved past the watch's start, so a bookmarked quiet watch never gets
 * near it, and one missed minute does not end a watch either. It stands in for the HTTP/2 pings client-go's transport
 * sends (HTTP/2 ReadIdleTimeout 30 s + PingTimeout 15 s), which Node's HTTP/1.1 client has not: a connection whose
 * peer is gone is noticed sooner by TCP keep-alive (kube-http.ts: probes after 30 s idle, 10 one second apart, so
 * ~40 s), but a load balancer or proxy that keeps the connection up for an API server that died answers those probes;
 * such a watch is given up after this long. A resource nothing changes (no event, no bookmark) is watched again
 * this often, from the watch cache.
 */
export const WATCH_IDLE_MS = 150_000;

/**
 * An ERROR event other than 410 Gone ends the watch with it, as client-go's reflector (watchHandler) ends a watch on
 * any ERROR event and lists again: the server sends one in place of a change it could not send (kube-apiserver's etcd3
 * watcher, for an object it cannot transform or decode) and may go on with later ones, so reading on would lose that
 * change. A 410 is left to ListWatch, which lists again when the stream ends. Null for every other event.
 */
function endsWatch(phase: string, obj: unknown): Error | null {
  if (phase !== 'ERROR' || !isObject(obj) || obj['code'] === 410) return null;
  const code = typeof obj['code'] === 'number' ? obj['code'] : 500;
  const message = typeof obj['message'] === 'string' ? obj['message'] : JSON.stringify(obj);
  return Object.assign(new Error(`in the watch stream: ${message}`), { statusCode: code });
}

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

  override async watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: WatchCallback,
    done: (err: any) => void,
  ): Promise<AbortController> {
    if (this.closed) return new AbortController();
    // Whether the current request's stream carried anything (VERY_SHORT_WATCH_MS).
    let heard = false;
    const guardedCallback: StreamCallback = (phase, obj, watchObj) => {
      if (this.closed) return;
      heard = true;
      this.hooks.onActivity();
      const ended = endsWatch(phase, obj);
      if (ended) return ended;
      if (!this.acceptable(phase, obj)) return;
      const rv = phase === 'ERROR' ? undefined : ((obj as { metadata: Record<string, unknown> }).metadata['resourceVersion'] as unknown);
      if (typeof rv === 'string' && rv !== '') this.hooks.onResourceVersion?.(rv);
      try {
        const kept = this.hooks.retain && OBJECT_EVENTS.has(phase) ? this.hooks.retain(obj as Record<string, unknown>) : obj;
        const result: unknown = callback(phase, kept, watchObj);
        if (result instanceof Promise) result.catch((err: unknown) => this.hooks.onProblem(`watch ${path}: ${phase} handler failed`, err));
      } catch (err) {
        this.hooks.onProblem(`watch ${path}: ${phase} handler failed`, err);
      }
    };
    // What ListWatch holds: aborting it aborts the request under way and any retry still to come.
    const outer = new AbortController();
    let current: AbortController | null = null;
    outer.signal.addEventListener('abort', () => current?.abort(), { once: true });
    const gone = (): boolean => this.closed || outer.signal.aborted;
    let ended = false;
    const end = (err: unknown, report: boolean): void => {
      if (ended) return;
      ended = true;
      this.streams.delete(outer);
      if (!report || this.closed) return;
      try {
        const result: unknown = done(err);
        if (result instanceof Promise) result.catch((e: unknown) => this.hooks.onDead(e));
      } catch (e) {
        this.hooks.onDead(e);
      }
    };
    let tries = 0;
    // One request for the watch; a failure worth it is asked again after the back-off, as client-go's Reflector.watch
    // loop does (the same resourceVersion, a new timeoutSeconds), and ListWatch sees one watch that took longer.
    const attempt = async (): Promise<void> => {
      const sentAt = performance.now();
      heard = false;
      let answered = false;
      const answer = (code: string): void => {
        if (answered) return;
        answered = true;
        this.hooks.observe?.({ method: 'GET', host: serverHost(this.config.getCurrentCluster()?.server ?? ''), code });
        if (code !== '200') return;
        tries = 0;
        this.hooks.onWatching?.();
      };
      const attemptDone = (why: unknown): void => {
        // The watch ended: before httpWatch returned, its request failed (an HTTP status or a transport error); after,
        // its stream ended (null: cleanly or its connection cut).
        answer(why ? String(statusOf(why) ?? '<error>') : '200');
        const err =
          !why && !heard && !gone() && performance.now() - sentAt < (this.hooks.veryShortMs ?? VERY_SHORT_WATCH_MS)
            ? new VeryShortWatchError(path)
            : why;
        if (err && this.hooks.backOff && !gone() && watchRetriable(err, tries)) {
          if (retryAfterMs(err) !== null || isProbableEOF(err)) tries++;
          void this.hooks.backOff(err).then((again) => (again && !gone() ? attempt() : end(null, false)));
          return;
        }
        end(err, true);
      };
      try {
        // As client-go's Reflector.watch asks: bookmarks, and the server to end the watch after 5 to 10 minutes.
        const query = { ...queryParams, allowWatchBookmarks: true, timeoutSeconds: watchTimeoutSeconds() };
        current = await httpWatch(this.config, path, query, guardedCallback, attemptDone, {
          responseMs: WATCH_RESPONSE_TIMEOUT_MS,
          idleMs: WATCH_IDLE_MS,
        });
        answer('200');
      } catch (err) {
        end(null, false);
        this.hooks.onDead(err);
        return;
      }
      if (gone()) current.abort();
    };
    this.streams.add(outer);
    await attempt();
    return outer;
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
      return true;
    }
    this.hooks.onProblem(`watch: dropped event of unknown type ${JSON.stringify(phase)}`);
    return false;
  }
}
