/**
 * The userspace TCP proxy of one service port: accepts connections on its
 * listener, dials an endpoint chosen by `pick` with upstream's retry schedule
 * (one attempt per entry of `dialTimeoutsMs`, default 250/500/1000/2000 ms;
 * a pick error aborts at once), then copies bytes both ways.
 *
 * Where it differs from upstream (reference userspace-mode.md §1.4-1.6):
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
 * proxy spends its CPU on (measured in BENCHMARKS.md):
 * - socket handlers are shared functions that find their connection through
 *   the socket, not closures made per connection;
 * - forwarding is a read/write/drain loop (backpressure: pause the reader
 *   when the writer's buffer is full, resume on drain), so buffering per
 *   direction stays within one socket high-water mark plus one chunk; bytes
 *   are read from the sockets' own counters at close, no per-chunk work;
 * - the endpoint's socket, which we open, reads into buffers the proxy owns
 *   (net.connect's onread) instead of a fresh 64 KiB allocation per read,
 *   whose churn makes V8 collect the whole heap (the agent's informer caches
 *   included) over and over during a download: reads up to 16 KiB land in
 *   one scratch buffer shared by the listener and are copied out; once a read
 *   fills it, the connection takes a 64 KiB buffer of its own from a small
 *   pool, reads into it without copying and pauses while a write from it is
 *   in flight, and gives it back on the first short read or at close. An
 *   accepted socket cannot be given such buffers (net.Server has no onread),
 *   so the client -> endpoint direction keeps Node's allocations;
 * - when the second FIN arrives and both write buffers are empty, both
 *   sockets are closed at once (close sends the FIN) instead of a shutdown
 *   and a wait for it;
 * - TCP keepalive (four setsockopt calls per socket) is switched on by a
 *   sweep every `keepAliveMs` for connections that have lived through one
 *   sweep, so short connections never pay for it and a vanished peer of a
 *   long one is still found, at most one period later than with keepalive
 *   from the start;
 * - timers exist only while needed: one per dial attempt, and the sockets'
 *   own inactivity timeouts once a FIN arrived (or always with idleTimeoutMs).
 */
import { connect as netConnect, createServer, type Server, type Socket, type TcpNetConnectOpts } from 'node:net';
import { parseEndpoint, unmapIP, type CloseReason, type Endpoint, type PickResult, type ProxyEventHandler } from './proxy-events.ts';
import { endpointString } from '../proxier/types.ts';

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
  /** Opens the connection to an endpoint (tests). Default net.connect; must honour allowHalfOpen. */
  readonly connect?: (options: TcpNetConnectOpts) => Socket;
}

export const DEFAULT_DIAL_TIMEOUTS_MS: readonly number[] = [250, 500, 1000, 2000];
export const DEFAULT_HALF_CLOSE_TIMEOUT_MS = 300_000;
export const DEFAULT_KEEPALIVE_MS = 15_000;
/** Reads into the shared scratch buffer are at most this long; a full one moves the connection to its own buffer. */
const SCRATCH_BYTES = 16 * 1024;
const OWN_BYTES = 64 * 1024;
/** Own buffers kept for reuse per listener. */
const POOL_MAX = 16;

/** The connection a socket belongs to. */
const CONN = Symbol('conn');
type ProxySocket = Socket & { [CONN]?: Conn };

class Conn {
  backend: ProxySocket | null = null;
  endpoint: string | null = null;
  dialTimer: NodeJS.Timeout | null = null;
  attempt = 0;
  /** The backend socket finished connecting. */
  connected = false;
  /** Number of directions whose FIN was received (0..2). */
  ended = 0;
  closed = false;
  /** Seen by one keepalive sweep (switched on at the next). */
  swept = false;
  keepAlive = false;
  /** The endpoint socket's own read buffer (null: it reads into the listener's scratch buffer). */
  readBuf: Buffer | null = null;
  /** A write to the client from readBuf is in flight: the endpoint socket is paused until it completes. */
  inFlight = false;
  /** Completion callback of writes from readBuf (made once per connection that needs it). */
  written: (() => void) | null = null;
  private addr: string | null = null;
  readonly proxy: TcpProxy;
  readonly client: ProxySocket;
  readonly clientIP: string;
  readonly start: number;

  constructor(proxy: TcpProxy, client: ProxySocket, clientIP: string, start: number) {
    this.proxy = proxy;
    this.client = client;
    this.clientIP = clientIP;
    this.start = start;
  }

  /** "ip:port" of the client, made only when an event needs it. */
  get clientAddr(): string {
    return (this.addr ??= endpointString({ ip: this.clientIP, port: this.client.remotePort ?? 0 }));
  }
}

const noop = (): void => {};

export class TcpProxy {
  private readonly o: TcpProxyOptions;
  /** @internal for the socket handlers below */
  readonly emit: ProxyEventHandler | null;
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
  /** Shared by every endpoint socket of this listener for short reads (copied out at once). */
  private readonly scratch = Buffer.allocUnsafe(SCRATCH_BYTES);
  private readonly pool: Buffer[] = [];
  private boundPort = 0;

  constructor(options: TcpProxyOptions) {
    this.o = options;
    this.emit = options.onEvent ?? null;
    this.dialTimeouts = options.dialTimeoutsMs ?? DEFAULT_DIAL_TIMEOUTS_MS;
    this.halfCloseMs = options.halfCloseTimeoutMs ?? DEFAULT_HALF_CLOSE_TIMEOUT_MS;
    this.idleMs = options.idleTimeoutMs ?? 0;
    this.keepAliveMs = options.keepAliveMs ?? DEFAULT_KEEPALIVE_MS;
    this.dial = options.connect ?? netConnect;
  }

  get id(): string {
    return this.o.id;
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

  /** Connections whose endpoint socket reads into a buffer of its own (the rest share one scratch buffer). */
  get ownReadBuffers(): number {
    let n = 0;
    for (const c of this.conns) if (c.readBuf) n++;
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
    const client = socket as ProxySocket;
    const ip = client.remoteAddress;
    const c = new Conn(this, client, ip ? unmapIP(ip) : '', performance.now());
    client[CONN] = c;
    this.conns.add(c);
    this.emit?.({ type: 'accepted', id: this.o.id, client: c.clientAddr });
    client.on('error', onSocketError);
    client.on('close', onSocketClose);
    if (!ip) return this.finish(c, 'error', 'client gone before accept');
    this.attempt(c, 0);
  }

  /** Dial attempt n: pick, connect with timeout, next attempt on failure. */
  attempt(c: Conn, n: number): void {
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
        onread: { buffer: () => c.readBuf ?? this.scratch, callback: onBackendRead },
      }) as ProxySocket;
      backend[CONN] = c;
      c.backend = backend;
      c.endpoint = picked.endpoint;
      c.attempt = n;
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

  /** A dial attempt failed (error or timeout): drop its socket, try the next. */
  dialFailed(c: Conn, endpoint: string, attempt: number, code: string): void {
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

  /** The backend is up: copy both ways. */
  connected(c: Conn, backend: ProxySocket): void {
    if (c.dialTimer) clearTimeout(c.dialTimer);
    c.dialTimer = null;
    c.connected = true;
    this.emit?.({ type: 'connected', id: this.o.id, client: c.clientAddr, endpoint: c.endpoint!, attempt: c.attempt, dialMs: performance.now() - c.start });
    const client = c.client;
    client.on('data', onData);
    client.on('drain', onDrain);
    backend.on('drain', onDrain);
    client.on('end', onEnd);
    backend.on('end', onEnd);
    backend.on('close', onSocketClose);
    if (this.idleMs > 0 || this.halfCloseMs > 0) {
      client.on('timeout', onTimeout);
      backend.on('timeout', onTimeout);
    }
    if (this.idleMs > 0) {
      client.setTimeout(this.idleMs);
      backend.setTimeout(this.idleMs);
    }
    client.resume();
  }

  /** A FIN arrived from `from`: pass it on; once both came, close. */
  onEnd(c: Conn, from: Socket): void {
    const to = from === c.client ? c.backend! : c.client;
    if (++c.ended === 1) {
      to.end();
      // Arm the half-close limit on both sockets: either may close itself first.
      const ms = this.idleMs > 0 && (this.halfCloseMs === 0 || this.idleMs < this.halfCloseMs) ? this.idleMs : this.halfCloseMs;
      if (ms > 0) {
        c.client.setTimeout(ms);
        c.backend!.setTimeout(ms);
      }
      return;
    }
    // Both FINs are in, so both read sides are drained: when nothing waits
    // to be written, close() sends our FIN to `to` (no shutdown call);
    // otherwise end() it and finish once both write sides are done.
    if (c.client.writableLength === 0 && c.backend!.writableLength === 0) return this.finish(c, 'done');
    to.end();
    c.client.on('finish', onFinish);
    c.backend!.on('finish', onFinish);
    onFinish.call(to);
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

  /** @internal an own read buffer for a connection, from the pool when one is free. */
  takeBuffer(): Buffer {
    return this.pool.pop() ?? Buffer.allocUnsafe(OWN_BYTES);
  }

  /** @internal a connection's own read buffer, no longer referenced by any pending write. */
  giveBuffer(b: Buffer): void {
    if (this.pool.length < POOL_MAX) this.pool.push(b);
  }

  finish(c: Conn, reason: CloseReason, error?: string): void {
    if (c.closed) return;
    c.closed = true;
    // A buffer a write still points into is left to the garbage collector.
    if (c.readBuf && !c.inFlight) this.giveBuffer(c.readBuf);
    c.readBuf = null;
    if (c.dialTimer) clearTimeout(c.dialTimer);
    c.dialTimer = null;
    this.conns.delete(c);
    const backend = c.backend;
    // A connection cut short (timeout, reset, shutdown) is reset on both
    // sides, so each peer learns at once instead of waiting in CLOSE_WAIT /
    // FIN_WAIT2; a refused client is just closed, as upstream.
    const abort = reason === 'idle' || reason === 'half-close timeout' || reason === 'error' || reason === 'shutdown';
    close(c.client, abort);
    if (backend) close(backend, abort);
    if (!this.emit) return;
    this.emit({
      type: 'closed',
      id: this.o.id,
      client: c.clientAddr,
      endpoint: c.endpoint,
      reason,
      bytesToEndpoint: c.client.bytesRead,
      bytesToClient: backend?.bytesRead ?? 0,
      durationMs: performance.now() - c.start,
      ...(error === undefined ? {} : { error }),
    });
  }
}

// Socket handlers, shared by every connection (`this` is the socket).

function onData(this: ProxySocket, chunk: Buffer): void {
  const c = this[CONN]!;
  const to = this === c.client ? c.backend! : c.client;
  if (!to.write(chunk)) this.pause();
}

/**
 * net.connect's onread.callback of an endpoint socket (`this`): n bytes from
 * the endpoint are in buf. Returning false pauses the socket.
 */
function onBackendRead(this: ProxySocket, n: number, buf: Uint8Array): boolean {
  const c = this[CONN]!;
  const client = c.client;
  if (buf !== c.readBuf) {
    // The shared scratch buffer: the next read of any socket overwrites it, so copy.
    if (n === buf.length) c.readBuf = c.proxy.takeBuffer();
    return client.write(Buffer.from(buf.subarray(0, n)));
  }
  c.written ??= (): void => {
    if (!c.inFlight) return;
    c.inFlight = false;
    if (!c.closed) c.backend!.resume();
  };
  client.write(buf.subarray(0, n), c.written);
  if (client.writableLength > 0) {
    // The kernel did not take it all: buf is still being written from.
    c.inFlight = true;
    return false;
  }
  if (n < SCRATCH_BYTES) {
    c.proxy.giveBuffer(buf as Buffer);
    c.readBuf = null;
  }
  return true;
}

function onDrain(this: ProxySocket): void {
  const c = this[CONN]!;
  (this === c.client ? c.backend! : c.client).resume();
}

function onEnd(this: ProxySocket): void {
  const c = this[CONN]!;
  c.proxy.onEnd(c, this);
}

function onFinish(this: ProxySocket): void {
  const c = this[CONN]!;
  if (c.client.writableFinished && c.backend!.writableFinished) c.proxy.finish(c, 'done');
}

function onTimeout(this: ProxySocket): void {
  const c = this[CONN]!;
  c.proxy.finish(c, c.ended > 0 ? 'half-close timeout' : 'idle');
}

function onSocketError(this: ProxySocket, err: NodeJS.ErrnoException): void {
  const c = this[CONN]!;
  if (this !== c.client && !c.connected && c.backend === this) {
    // A dial attempt failed.
    const endpoint = c.endpoint!;
    c.proxy.dialFailed(c, endpoint, c.attempt, err.code ?? 'EIO');
    if (!c.closed) c.proxy.attempt(c, c.attempt + 1);
    return;
  }
  c.proxy.finish(c, 'error', err.message);
}

/** A socket closed: fine once its write side finished or we are closing, else the connection broke. */
function onSocketClose(this: ProxySocket): void {
  const c = this[CONN]!;
  if (!c.closed && !this.writableFinished) c.proxy.finish(c, 'error', 'socket closed');
}

function onBackendConnect(this: ProxySocket): void {
  const c = this[CONN]!;
  if (c.backend !== this || c.closed) return;
  c.proxy.connected(c, this);
}

function onDialTimeout(c: Conn, backend: ProxySocket): void {
  if (c.backend !== backend || c.closed || c.connected) return;
  c.dialTimer = null;
  c.proxy.dialFailed(c, c.endpoint!, c.attempt, 'ETIMEDOUT');
  if (!c.closed) c.proxy.attempt(c, c.attempt + 1);
}

/**
 * Destroys a socket, with an RST when asked and possible: libuv does not
 * reset a socket whose write side is shut down (it fails while the shutdown
 * is in flight), so a socket we already sent FIN on is closed plainly.
 */
function close(s: Socket, reset: boolean): void {
  if (reset && !s.destroyed && !s.connecting && !s.writableEnded) s.resetAndDestroy();
  else s.destroy();
}
