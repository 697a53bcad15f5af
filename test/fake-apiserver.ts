/**
 * A faithful in-process Kubernetes list/watch server for Services,
 * EndpointSlices, Nodes and ServiceCIDRs (networking.k8s.io/v1, as from
 * Kubernetes 1.33; `servesServiceCIDRs = false` plays an older one), that the real @kubernetes/client-node informers
 * run against. As a real apiserver it serves HTTPS only (a CA and serving
 * certificate made at test time, see fake-apiserver-tls.ts) and authenticates
 * as the real one's x509 and token authenticators do: a client certificate
 * its CA signed and that is valid now (the user is its CN), else an accepted
 * bearer token, else 401 Unauthorized (tests rotate the accepted tokens).
 * Wire format as the real apiserver's: JSON lists without per-item
 * kind/apiVersion, paginated with limit/continue, at the resourceVersion
 * asked for as the watch cache and etcd answer (fake-apiserver-list.ts); chunked NDJSON watches that
 * replay from a resourceVersion, translate selector transitions into
 * ADDED/DELETED, send BOOKMARKs only when asked (and, as the watch cache,
 * only at a resourceVersion past the watch's start), end a watch after the
 * timeoutSeconds it asked for, and answer an expired
 * resourceVersion with an in-stream 410 ERROR then close (or a plain HTTP
 * 410). It listens on 127.0.0.1 and, on request, on a unix socket too (a
 * path reachable from every network namespace: tests relay a node's port to
 * it). Tests drive it with create/update/delete, dropWatches, compact,
 * failNext, resetNext, endWatchesAtOnce, down/up, and read back the request log.
 */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { ObjectStore, RESOURCE_INFO, keyOf, type KubeObject, type LogEntry, type Resource } from './fake-apiserver-store.ts';
import { routeRequest, startWatch, statusObject, type Route, type WatchStream } from './fake-apiserver-watch.ts';
import { SelectorError, selectorMatcher } from './fake-apiserver-selectors.ts';
import { listPage } from './fake-apiserver-list.ts';
import { defaultTestPki, type ClientCert, type TestPki } from './fake-apiserver-tls.ts';
import { FAKE_TOKEN, httpsFetch, kubeConfigFor } from './fake-apiserver-client.ts';

export type { KubeObject, Resource, TestPki };

export { FAKE_TOKEN, kubeConfigFor };

export interface FakeApiServerOptions {
  /** How an expired watch resourceVersion is answered: 200 + ERROR event (the watch cache, default) or HTTP 410. */
  readonly expiredWatch?: 'in-stream' | 'http';
  /** Refuse field selectors on spec.clusterIP/spec.type for Services, as apiservers before 1.31 do. */
  readonly legacyServiceFields?: boolean;
  /** CA and serving certificate (default: one shared per test process, valid for localhost and 127.0.0.1). */
  readonly pki?: TestPki;
  /** Bearer tokens accepted (default [FAKE_TOKEN]). */
  readonly tokens?: readonly string[];
  /** Serve networking.k8s.io/v1 ServiceCIDRs (default true, as Kubernetes 1.33 and later); false answers 404. */
  readonly serviceCIDRs?: boolean;
  /** Serve lists at resourceVersion "0" from a watch cache, whole (default true); false plays --watch-cache=false. */
  readonly watchCache?: boolean;
}

export interface LoggedRequest {
  readonly method: string;
  readonly path: string;
  /** Query parameters in the order the client sent them. */
  readonly query: Readonly<Record<string, string>>;
  readonly resource: Resource | null;
  readonly verb: 'list' | 'watch' | null;
  readonly authorization: string | null;
  /** Who the request was authenticated as: `x509:<CN>` or `token:<token>` (null: refused). */
  user?: string | null;
  readonly at: number;
  /** HTTP status answered (set once answered). */
  status?: number;
  /** Size of a complete (non-watch) response body in bytes. */
  bytes?: number;
}

export type Verb = 'list' | 'watch';

export class FakeApiServer {
  readonly port: number;
  readonly url: string;
  readonly pki: TestPki;
  expiredWatch: 'in-stream' | 'http';
  /** Whether ServiceCIDRs are served (an API server before 1.31 answers 404); may be flipped to play an upgrade. */
  servesServiceCIDRs: boolean;
  /**
   * The versions ServiceCIDRs are served as, when served: networking.k8s.io/v1 (default) and/or v1beta1 (1.31-1.32
   * with MultiCIDRServiceAllocator on serve v1beta1 only; 1.33 and 1.34 serve both).
   */
  serviceCIDRVersions: readonly string[] = ['networking.k8s.io/v1'];
  /** Whether lists at resourceVersion "0" come from a watch cache, whole whatever their limit (fake-apiserver-list.ts). */
  watchCache: boolean;
  private readonly server: Server;
  private readonly store: ObjectStore;
  private readonly legacyServiceFields: boolean;
  private tokens: Set<string>;
  /** The client CA (the one that signed the serving certificate, as kubeadm's single cluster CA). */
  private readonly ca: X509Certificate;
  private readonly watches = new Set<WatchStream>();
  private readonly failures = new Map<string, { code: number; retryAfter?: number }[]>();
  /** Resources whose watches are answered and ended at once (endWatchesAtOnce). */
  private readonly shortWatches = new Set<Resource>();
  /** Per resource, how long each list request waits for its answer (delayLists). */
  private readonly listDelays = new Map<Resource, number>();
  /** Per resource, what the open watches get in place of the next changes' events (failNextEvent). */
  private readonly lostEvents = new Map<Resource, string[]>();
  private readonly log: LoggedRequest[] = [];
  private readonly rawSockets = new Set<Socket>();
  private unix: { path: string; server: NetServer } | null = null;
  private waiters: Array<() => void> = [];
  private isUp = true;
  /** Events created through POST /apis/events.k8s.io/v1/namespaces/{ns}/events, in order. */
  readonly events: Record<string, unknown>[] = [];

  static async start(options: FakeApiServerOptions = {}): Promise<FakeApiServer> {
    const pki = options.pki ?? defaultTestPki();
    // As kube-apiserver with --client-ca-file: a client certificate is asked for, and optional; authenticate() checks
    // it (not `ca` here: Node would then also send the CA with the server's certificate, which kubeadm's does not).
    const server = createServer({ key: pki.keyPem, cert: pki.certPem, requestCert: true, rejectUnauthorized: false });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return new FakeApiServer(server, pki, options);
  }

  private constructor(server: Server, pki: TestPki, options: FakeApiServerOptions) {
    this.server = server;
    this.pki = pki;
    this.port = (server.address() as AddressInfo).port;
    this.url = `https://127.0.0.1:${this.port}`;
    this.expiredWatch = options.expiredWatch ?? 'in-stream';
    this.legacyServiceFields = options.legacyServiceFields ?? false;
    this.servesServiceCIDRs = options.serviceCIDRs ?? true;
    this.watchCache = options.watchCache ?? true;
    this.tokens = new Set(options.tokens ?? [FAKE_TOKEN]);
    this.ca = new X509Certificate(pki.caPem);
    this.store = new ObjectStore((entry) => this.broadcast(entry));
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.handle(req, res));
    server.on('connection', (sock: Socket) => this.track(sock));
  }

  get resourceVersion(): number {
    return this.store.resourceVersion;
  }

  /** Accept only these bearer tokens from now on (open watches are not cut, as on a real apiserver). */
  setTokens(tokens: readonly string[]): void {
    this.tokens = new Set(tokens);
  }

  /**
   * Also serves on a unix socket at `path` (TLS end to end; a relay in a node
   * namespace forwards TCP to it). Kept across down()/up().
   */
  async listenUnix(path: string): Promise<void> {
    if (this.unix) throw new Error('fake apiserver: already listening on a unix socket');
    const server = createNetServer((sock) => {
      this.track(sock);
      this.server.emit('connection', sock);
    });
    this.unix = { path, server };
    if (this.isUp) await this.startUnix();
  }

  create(resource: Resource, obj: KubeObject): KubeObject {
    return this.store.create(resource, obj);
  }
  update(resource: Resource, obj: KubeObject): KubeObject {
    return this.store.update(resource, obj);
  }

  delete(resource: Resource, objOrKey: KubeObject | string): KubeObject {
    const key =
      typeof objOrKey === 'string'
        ? objOrKey
        : keyOf(RESOURCE_INFO[resource].namespaced ? { metadata: { namespace: 'default', ...objOrKey.metadata } } : objOrKey);
    return this.store.delete(resource, key);
  }

  get(resource: Resource, key: string): KubeObject | null {
    return this.store.get(resource, key);
  }

  /** Forgets change history up to uptoRv (default: all); older watch resourceVersions become expired. */
  compact(uptoRv?: number): void {
    this.store.compact(uptoRv);
  }

  /**
   * Sends a BOOKMARK at the current resourceVersion to the open watches that asked for bookmarks and started before
   * it (kube-apiserver's cacher sends one about every minute; tests call this in its place).
   */
  bookmark(resource?: Resource): void {
    for (const w of this.watches) if (!resource || w.resource === resource) w.bookmark(this.store.resourceVersion);
  }

  /** Writes text as is to the open watch streams of a resource (malformed or split lines). */
  injectRaw(resource: Resource, text: string): void {
    for (const w of this.watches) if (w.resource === resource) w.raw(text);
  }

  /**
   * The next change to `resource` is made, but the open watches get `raw` in its place, as kube-apiserver's etcd3
   * watcher sends an ERROR Status instead of an object it cannot transform or decode (a KMS or storage hiccup) and
   * goes on with the next event; a list shows the change. Queued, one per call.
   */
  failNextEvent(resource: Resource, raw: string): void {
    this.lostEvents.set(resource, [...(this.lostEvents.get(resource) ?? []), raw]);
  }

  /** Every list request (each page) of `resource` is answered `ms` later, as an API server under load answers (0: at once). */
  delayLists(resource: Resource, ms: number): void {
    this.listDelays.set(resource, ms);
  }

  /**
   * While on, every watch of `resource` is answered (200) and ended at once, nothing sent: as kube-apiserver's cacher
   * ends a watch it could not register (its watch cache went unready in between), or a proxy that does not pass a
   * stream on. Open watches are left as they are.
   */
  endWatchesAtOnce(resource: Resource, on = true): void {
    if (on) this.shortWatches.add(resource);
    else this.shortWatches.delete(resource);
  }

  /** Ends every open watch stream cleanly (a real apiserver does so after its request timeout). */
  dropWatches(resource?: Resource): void {
    for (const w of [...this.watches]) {
      if (resource && w.resource !== resource) continue;
      w.end();
      this.watches.delete(w);
    }
    this.changed();
  }

  /** Cuts the connections of the open watch streams (no end chunk: a reset mid-stream), the server still serving. */
  resetWatches(resource?: Resource): void {
    for (const w of [...this.watches]) {
      if (resource && w.resource !== resource) continue;
      w.destroy();
      this.watches.delete(w);
    }
    this.changed();
  }

  /**
   * The next `verb` request for `resource` is answered with HTTP `code` and a Status body (queued; one per call), with
   * a `Retry-After: <seconds>` header if given (API priority and fairness answers 429 with `Retry-After: 1`).
   */
  failNext(resource: Resource, verb: Verb, code: number, times = 1, retryAfter?: number): void {
    const queue = this.failures.get(`${resource}:${verb}`) ?? [];
    for (let i = 0; i < times; i++) queue.push(retryAfter === undefined ? { code } : { code, retryAfter });
    this.failures.set(`${resource}:${verb}`, queue);
  }

  /**
   * The next `verb` request for `resource` gets no answer: its connection is closed under it (as a load balancer
   * closes one it cannot pass to a backend; the client sees ECONNRESET, "socket hang up"). Queued with failNext's.
   */
  resetNext(resource: Resource, verb: Verb, times = 1): void {
    this.failNext(resource, verb, 0, times);
  }

  /** Stops listening (connections are refused) and cuts every open connection; the port is kept for up(). */
  async down(): Promise<void> {
    if (!this.isUp) return;
    await this.stopListening();
    this.changed();
  }

  /** Listens again on the same port (and unix socket). */
  async up(): Promise<void> {
    if (this.isUp) return;
    this.server.listen(this.port, '127.0.0.1');
    await once(this.server, 'listening');
    if (this.unix) await this.startUnix();
    this.isUp = true;
    this.changed();
  }

  requests(filter: { resource?: Resource; verb?: Verb } = {}): readonly LoggedRequest[] {
    return this.log.filter((r) => (!filter.resource || r.resource === filter.resource) && (!filter.verb || r.verb === filter.verb));
  }

  watchCount(resource?: Resource): number {
    return [...this.watches].filter((w) => !resource || w.resource === resource).length;
  }

  /** Resolves once cond() holds, re-checked after every request, watch open/close and change; rejects after timeoutMs. */
  until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (!cond()) return;
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== check);
        reject(new Error(`fake apiserver: timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.waiters.push(check);
    });
  }

  async close(): Promise<void> {
    if (this.isUp) await this.stopListening();
  }

  /** A request to this server with its CA and, unless told otherwise, an accepted token (tests of the wire format). */
  fetch(path: string, init: { token?: string | null; method?: string; body?: string; cert?: ClientCert } = {}): Promise<Response> {
    const token = init.token === undefined ? [...this.tokens][0] : init.token;
    return httpsFetch(`${this.url}${path}`, {
      ca: this.pki.caPem,
      token: token ?? null,
      ...(init.method ? { method: init.method } : {}),
      ...(init.body !== undefined ? { body: init.body } : {}),
      ...(init.cert ? { cert: init.cert.certPem, key: init.cert.keyPem } : {}),
    });
  }

  private async startUnix(): Promise<void> {
    const u = this.unix!;
    rmSync(u.path, { force: true });
    u.server.listen(u.path);
    await once(u.server, 'listening');
  }

  private track(sock: Socket): void {
    this.rawSockets.add(sock);
    sock.once('close', () => this.rawSockets.delete(sock));
  }

  private async stopListening(): Promise<void> {
    this.isUp = false;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const unixClosed = this.unix ? new Promise<void>((resolve) => this.unix!.server.close(() => resolve())) : Promise.resolve();
    for (const w of [...this.watches]) w.destroy();
    this.watches.clear();
    this.server.closeAllConnections();
    for (const sock of this.rawSockets) sock.destroy();
    await Promise.all([closed, unixClosed]);
  }

  private createEvent(req: IncomingMessage, res: ServerResponse, namespace: string, fail: (code: number, message: string) => void): void {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => {
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(text) as Record<string, unknown>;
      } catch {
        return fail(400, 'invalid JSON body');
      }
      const md = body['metadata'] as { namespace?: string } | undefined;
      if (md?.namespace && md.namespace !== namespace)
        return fail(400, `the namespace of the object (${md.namespace}) does not match the namespace on the request (${namespace})`);
      // metav1.MicroTime.UnmarshalJSON parses with the fixed-width layout RFC3339Micro, before any validation.
      const t = body['eventTime'];
      if (typeof t === 'string' && !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)$/.test(t))
        return fail(
          400,
          `Event in version "v1" cannot be handled as a Event: parsing time "${t}" as "2006-01-02T15:04:05.000000Z07:00": cannot parse`,
        );
      if (!body['reason'] || !body['regarding'] || !body['reportingController'] || !body['eventTime'])
        return fail(422, 'Event is invalid: reason, regarding, reportingController and eventTime are required');
      this.events.push(body);
      this.changed();
      res.writeHead(201, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
    });
  }

  private changed(): void {
    for (const w of [...this.waiters]) w();
  }

  private broadcast(entry: LogEntry): void {
    const lost = this.lostEvents.get(entry.resource)?.shift();
    for (const w of this.watches) if (w.resource === entry.resource) lost === undefined ? w.send(entry) : w.raw(lost);
    this.changed();
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'https://fake');
    const routed: Route | null = routeRequest(url.pathname);
    const route =
      routed?.resource === 'servicecidrs' &&
      !(this.servesServiceCIDRs && this.serviceCIDRVersions.includes(routed.apiVersion ?? RESOURCE_INFO.servicecidrs.apiVersion))
        ? null
        : routed;
    const watch = url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1';
    const verb: Verb | null = route ? (watch ? 'watch' : 'list') : null;
    const entry: LoggedRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      resource: route?.resource ?? null,
      verb,
      authorization: req.headers.authorization ?? null,
      at: Date.now(),
    };
    this.log.push(entry);
    const writeHead = res.writeHead.bind(res);
    res.writeHead = ((code: number, ...rest: unknown[]) => {
      entry.status = code;
      return (writeHead as (...a: unknown[]) => ServerResponse)(code, ...rest);
    }) as typeof res.writeHead;
    try {
      this.serve(req, res, url, route, verb, entry);
    } finally {
      this.changed();
    }
  }

  /**
   * The real apiserver's union of authenticators: the x509 one (a certificate the client CA signed, valid now; an
   * expired one is an error, not a user), then the bearer token; neither gives 401.
   */
  private authenticate(req: IncomingMessage): string | null {
    const peer = (req.socket as TLSSocket).getPeerX509Certificate();
    const now = Date.now();
    if (peer && peer.checkIssued(this.ca) && peer.verify(this.ca.publicKey) && now >= Date.parse(peer.validFrom) && now <= Date.parse(peer.validTo)) {
      const cn = /^CN=(.+)$/m.exec(peer.subject)?.[1];
      if (cn) return `x509:${cn}`;
    }
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    return bearer !== undefined && this.tokens.has(bearer) ? `token:${bearer}` : null;
  }

  private serve(req: IncomingMessage, res: ServerResponse, url: URL, route: Route | null, verb: Verb | null, entry: LoggedRequest): void {
    const json = (code: number, body: unknown, headers: Record<string, string> = {}): void => {
      const text = JSON.stringify(body);
      entry.bytes = Buffer.byteLength(text);
      res.writeHead(code, { 'Content-Type': 'application/json', ...headers }).end(text);
    };
    const fail = (code: number, message: string): void => json(code, statusObject(code, message));
    entry.user = this.authenticate(req);
    if (!entry.user) return json(401, statusObject(401, 'Unauthorized'));
    const eventsIn = /^\/apis\/events\.k8s\.io\/v1\/namespaces\/([^/]+)\/events$/.exec(url.pathname);
    if (eventsIn && req.method === 'POST') return this.createEvent(req, res, eventsIn[1]!, fail);
    if (!route || !verb) return fail(404, `the server could not find the requested resource (${url.pathname})`);
    if (req.method !== 'GET') return fail(405, `method ${req.method} not supported by the fake apiserver`);
    const injected = this.failures.get(`${route.resource}:${verb}`)?.shift();
    if (injected?.code === 0) return void req.socket.destroy();
    if (injected !== undefined)
      return json(
        injected.code,
        statusObject(injected.code, `injected failure for ${verb} ${route.resource}`),
        injected.retryAfter === undefined ? {} : { 'Retry-After': String(injected.retryAfter) },
      );
    const info = RESOURCE_INFO[route.resource];
    const fields = this.legacyServiceFields && route.resource === 'services' ? ['metadata.name', 'metadata.namespace'] : info.fields;
    let match;
    try {
      const selected = selectorMatcher(url.searchParams, fields);
      match = (o: unknown): boolean => selected(o) && (route.namespace === null || (o as KubeObject).metadata.namespace === route.namespace);
    } catch (err) {
      if (err instanceof SelectorError) return fail(400, err.message);
      throw err;
    }
    if (verb === 'list') {
      const answer = (): void => {
        if (res.destroyed) return;
        const page = listPage({ resource: route.resource, query: url.searchParams, match, store: this.store, watchCache: this.watchCache });
        if (!page.ok)
          return json(page.code, { ...statusObject(page.code, page.message), ...(page.details ? { details: page.details } : {}) }, page.headers);
        json(200, route.apiVersion ? { ...page.body, apiVersion: route.apiVersion } : page.body);
      };
      const delay = this.listDelays.get(route.resource) ?? 0;
      if (delay > 0)
        setTimeout(() => {
          answer();
          this.changed();
        }, delay);
      else answer();
      return;
    }
    if (this.shortWatches.has(route.resource)) return void res.writeHead(200, { 'Content-Type': 'application/json' }).end();
    const stream = startWatch({ res, route, query: url.searchParams, match, store: this.store, expired: this.expiredWatch, fail });
    if (!stream) return;
    this.watches.add(stream);
    res.on('close', () => {
      this.watches.delete(stream);
      this.changed();
    });
  }
}
