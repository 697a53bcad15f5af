/**
 * The userspace TCP proxy of one service port: accepts connections on its
 * listener, dials an endpoint chosen by `pick` with upstream's retry schedule
 * (one attempt per entry of `dialTimeoutsMs`, default 250/500/1000/2000 ms;
 * a pick error aborts at once), then copies bytes both ways.
 *
 * Where it differs from upstream (pkg/proxy/userspace/proxysocket.go, TryConnectEndpoints):
 * - accepting is never serialized behind dialing: every connection dials on
 *   its own, so one slow endpoint does not stall the listener;
 * - half-close is real: a FIN from one side is passed on (end()) while the
 *   other direction keeps flowing, and the connection is done once both
 *   directions finished. Upstream dropped this (full close on the first EOF,
 *   losing replies to clients that shut down their write side) because its
 *   CloseWrite version leaked sockets stuck in FIN_WAIT2 (issue #18354).
 *   Here the leak is bounded by `halfCloseTimeoutMs` (default 5 min): once a
 *   side has sent FIN, the connection is destroyed when no byte moves either
 *   way for that long (an inactivity limit, like HAProxy's client-fin /
 *   server-fin, so a long download after the request's FIN is not cut).
 *   Fully open connections have no limit by default (`idleTimeoutMs` 0), as
 *   upstream; TCP keepalive (15 s) reaps vanished peers.
 * - any error or reset on either side, or a timeout, destroys both sockets
 *   at once, with an RST to each peer we have not sent FIN to yet.
 *
 * The connection path is kept short, because on a busy node it is what the
 * proxy spends its CPU on (measured in BENCHMARKS.md); the copy loop itself
 * is tcp-connection.ts. Here:
 * - TCP keepalive (four setsockopt calls per socket) is switched on by a
 *   sweep every `keepAliveMs` for connections that have lived through one
 *   sweep, so short connections never pay for it and a vanished peer of a
 *   long one is still found, at most one period later than with keepalive
 *   from the start;
 * - timers exist only while needed: one per dial attempt, and the sockets'
 *   own inactivity timeouts once a FIN arrived (or always with idleTimeoutMs);
 * - endpoint strings are parsed once, not per dial.
 */
import { connect as netConnect, createServer, type Server, type Socket, type TcpNetConnectOpts } from 'node:net';
import { parseEndpoint, unmapIP, type CloseReason, type Endpoint, type PickResult, type ProxyEventHandler } from './proxy-events.ts';
import {
  CONN,
  Conn,
  onBackendConnect,
  onDialTimeout,
  onRead,
  onSocketClose,
  onSocketError,
  ReadBuffers,
  type ConnOwner,
  type ProxySocket,
} from './tcp-connection.ts';
import { ownReadSocket } from './own-read-socket.ts';

export interface TcpProxyOptions {
  /** Listener id, carried by every event. */
  readonly id: string;
  /** Address to listen on: '0.0.0.0', '::' or a specific IP. */
  readonly host: string;
  /** 0 = any free port. */
  readonly port: number;
  /** The endpoint for a client IP; attempt counts from 0 (retries should reset affinity). */
  readonly pick: (clientIP: string, attempt: number) => PickResult;
  readonly onEvent?: ProxyEventHandler;
  /** One dial attempt per entry, with that timeout. Default upstream's [250, 500, 1000, 2000]. */
  readonly dialTimeoutsMs?: readonly number[];
  /** Destroy a connection after this long without traffic either way; 0 (default) = never. */
  readonly idleTimeoutMs?: number;
  /** After the first FIN, destroy the connection after this long without traffic. Default 300 000; 0 = never. */
  readonly halfCloseTimeoutMs?: number;
  /**
   * TCP keepalive idle time; default 15 000 (Go's default, which upstream
   * inherited). Switched on for connections older than one period (see above); 0 = never.
   */
  readonly keepAliveMs?: number;
  readonly backlog?: number;
  /** SO_REUSEPORT: several proxies (threads, processes) accept on the same port, the kernel spreads connections. */
  readonly reusePort?: boolean;
  /**
   * Read accepted sockets into buffers the proxy reuses (default true; see
   * own-read-socket.ts); false: through their 'data' events, a fresh Node buffer per read.
   */
  readonly ownClientReads?: boolean;
  /** Opens the connection to an endpoint (tests). Default net.connect; must honour allowHalfOpen and onread. */
  readonly connect?: (options: TcpNetConnectOpts) => Socket;
}

export const DEFAULT_DIAL_TIMEOUTS_MS: readonly number[] = [250, 500, 1000, 2000];
export const DEFAULT_HALF_CLOSE_TIMEOUT_MS = 300_000;
export const DEFAULT_KEEPALIVE_MS = 15_000;
const noop = (): void => {};

export class TcpProxy implements ConnOwner {
  private readonly o: TcpProxyOptions;
  private readonly emit: ProxyEventHandler | null;
  private readonly dialTimeouts: readonly number[];
  private readonly halfCloseMs: number;
  private readonly idleMs: number;
  private readonly keepAliveMs: number;
  private readonly dial: (options: TcpNetConnectOpts) => Socket;
  private readonly conns = new Set<Conn>();
  /** Parsed endpoints by "ip:port": the balancer hands out the same few strings. */
  private readonly parsed = new Map<string, Endpoint | null>();
  private server: Server | null = null;
  private sweeper: NodeJS.Timeout | null = null;
  /** @internal (ConnOwner) */
  readonly buffers = new ReadBuffers();
  /** @internal (ConnOwner) */
  readonly halfCloseLimitMs: number;
  private boundPort = 0;

  constructor(options: TcpProxyOptions) {
    this.o = options;
    this.emit = options.onEvent ?? null;
    this.dialTimeouts = options.dialTimeoutsMs ?? DEFAULT_DIAL_TIMEOUTS_MS;
    this.halfCloseMs = options.halfCloseTimeoutMs ?? DEFAULT_HALF_CLOSE_TIMEOUT_MS;
    this.idleMs = options.idleTimeoutMs ?? 0;
    this.keepAliveMs = options.keepAliveMs ?? DEFAULT_KEEPALIVE_MS;
    this.dial = options.connect ?? netConnect;
    const [idle, half] = [this.idleMs, this.halfCloseMs];
    this.halfCloseLimitMs = idle > 0 && (half === 0 || idle < half) ? idle : half;
  }

  get port(): number {
    return this.boundPort;
  }

  /** Connections accepted and not yet closed (dialing ones included). */
  get activeConnections(): number {
    return this.conns.size;
  }

  /**
   * Bytes held in this process for all connections (socket read and write
   * buffers): a diagnostic of backpressure, O(connections).
   */
  bufferedBytes(): number {
    let n = 0;
    for (const c of this.conns) {
      n += c.client.readableLength + c.client.writableLength;
      if (c.backend) n += c.backend.readableLength + c.backend.writableLength;
    }
    return n;
  }

  /** Sockets (client or endpoint) that read into a buffer of their own (the rest share one scratch buffer). */
  get ownReadBuffers(): number {
    let n = 0;
    for (const c of this.conns) n += (c.up.readBuf ? 1 : 0) + (c.down.readBuf ? 1 : 0);
    return n;
  }

  /** Starts listening; resolves with the bound port, rejects with the socket error (EADDRINUSE...). */
  listen(): Promise<number> {
    if (this.server) return Promise.reject(new Error(`${this.o.id}: already listening`));
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (socket) => this.accept(socket));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', (err) => {
        this.server = null;
        reject(err);
      });
      server.listen({ host: this.o.host, port: this.o.port, backlog: this.o.backlog ?? 4096, reusePort: this.o.reusePort ?? false }, () => {
        server.removeAllListeners('error');
        server.on('error', (err: NodeJS.ErrnoException) =>
          this.emit?.({ type: 'listener-error', id: this.o.id, code: err.code ?? 'EIO', message: err.message }),
        );
        const addr = server.address();
        this.boundPort = addr && typeof addr === 'object' ? addr.port : 0;
        if (this.keepAliveMs > 0) {
          this.sweeper = setInterval(() => this.sweepKeepAlive(), this.keepAliveMs);
          this.sweeper.unref();
        }
        resolve(this.boundPort);
      });
    });
  }

  /**
   * Stops accepting and releases the port; open connections are left to
   * finish on their own (they are independent sockets).
   */
  close(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server?.listening) return Promise.resolve();
    // server.close()'s callback waits for every connection; the listening
    // socket itself is closed synchronously, so one turn of the loop is enough.
    server.close(noop);
    return new Promise((resolve) => setImmediate(resolve));
  }

  /** close(), and destroys every open connection (reason 'shutdown'). */
  async closeAll(): Promise<void> {
    const done = this.close();
    for (const c of [...this.conns]) this.finish(c, 'shutdown');
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
    await done;
  }

  private accept(socket: Socket): void {
    const ip = socket.remoteAddress;
    const wrap = this.o.ownClientReads === false ? () => socket : (buffer: () => Buffer) => ownReadSocket(socket, { buffer, callback: onRead }, true);
    const c = new Conn(this, wrap, ip ? unmapIP(ip) : '', performance.now());
    const client = c.client;
    this.conns.add(c);
    this.emit?.({ type: 'accepted', id: this.o.id, client: c.clientAddr });
    client.on('error', onSocketError);
    client.on('close', onSocketClose);
    if (!ip) return this.finish(c, 'error', 'client gone before accept');
    this.attempt(c, 0);
  }

  /** Dial attempt n: pick, connect with timeout, next attempt on failure. */
  private attempt(c: Conn, n: number): void {
    for (; !c.closed; n++) {
      if (n >= this.dialTimeouts.length) return this.finish(c, 'dial failed');
      const picked = this.o.pick(c.clientIP, n);
      if ('error' in picked) return this.finish(c, 'no endpoint', picked.error);
      const ep = this.endpoint(picked.endpoint);
      if (!ep) {
        this.dialFailed(c, picked.endpoint, n, 'EINVAL');
        continue;
      }
      const backend = this.dial({
        host: ep.host,
        port: ep.port,
        family: ep.family,
        allowHalfOpen: true,
        noDelay: true,
        // Called after every read for the buffer of the next one.
        onread: { buffer: c.down.nextReadBuffer, callback: onRead },
      }) as ProxySocket;
      backend[CONN] = c;
      c.backend = backend;
      c.endpoint = picked.endpoint;
      c.attempt = n;
      c.dialStart = performance.now();
      c.dialTimer = setTimeout(onDialTimeout, this.dialTimeouts[n], c, backend);
      backend.on('error', onSocketError);
      backend.on('connect', onBackendConnect);
      return;
    }
  }

  private endpoint(s: string): Endpoint | null {
    let ep = this.parsed.get(s);
    if (ep === undefined) {
      if (this.parsed.size >= 1024) this.parsed.clear();
      ep = parseEndpoint(s);
      this.parsed.set(s, ep);
    }
    return ep;
  }

  /** @internal (ConnOwner) */
  retry(c: Conn, code: string): void {
    this.dialFailed(c, c.endpoint!, c.attempt, code);
    this.attempt(c, c.attempt + 1);
  }

  /** A dial attempt failed (error, timeout, malformed endpoint): drop its socket. */
  private dialFailed(c: Conn, endpoint: string, attempt: number, code: string): void {
    if (c.backend) {
      const b = c.backend;
      c.backend = null;
      c.endpoint = null;
      b.removeAllListeners();
      b.on('error', noop);
      b.destroy();
    }
    if (c.dialTimer) clearTimeout(c.dialTimer);
    c.dialTimer = null;
    this.emit?.({ type: 'dial-failed', id: this.o.id, client: c.clientAddr, endpoint, attempt, code });
  }

  /** @internal (ConnOwner) The endpoint socket is up: copy both ways. */
  connected(c: Conn): void {
    if (c.dialTimer) clearTimeout(c.dialTimer);
    c.dialTimer = null;
    c.connected = true;
    this.emit?.({
      type: 'connected',
      id: this.o.id,
      client: c.clientAddr,
      endpoint: c.endpoint!,
      attempt: c.attempt,
      dialMs: performance.now() - c.dialStart,
    });
    c.startCopy(this.idleMs, this.idleMs > 0 || this.halfCloseMs > 0);
  }

  /** Turns keepalive on for connections that were already open at the last sweep. */
  private sweepKeepAlive(): void {
    for (const c of this.conns) {
      if (!c.connected || c.keepAlive) continue;
      if (!c.swept) c.swept = true;
      else {
        c.keepAlive = true;
        c.client.setKeepAlive(true, this.keepAliveMs);
        c.backend!.setKeepAlive(true, this.keepAliveMs);
      }
    }
  }

  /** @internal (ConnOwner) */
  finish(c: Conn, reason: CloseReason, error?: string): void {
    if (c.closed) return;
    c.closed = true;
    this.conns.delete(c);
    // A connection cut short (timeout, reset, shutdown) is reset on both
    // sides, so each peer learns at once instead of waiting in CLOSE_WAIT /
    // FIN_WAIT2; a refused client is just closed, as upstream.
    c.destroy(reason === 'idle' || reason === 'half-close timeout' || reason === 'error' || reason === 'shutdown');
    if (!this.emit) return;
    this.emit({
      type: 'closed',
      id: this.o.id,
      client: c.clientAddr,
      endpoint: c.endpoint,
      reason,
      bytesToEndpoint: c.client.bytesRead,
      bytesToClient: c.backend?.bytesRead ?? 0,
      durationMs: performance.now() - c.start,
      ...(error === undefined ? {} : { error }),
    });
  }
}
