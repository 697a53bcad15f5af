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
 *   upstream; TCP keepalive (15 s) on both sockets reaps vanished peers.
 * - any error or reset on either side, or a timeout, destroys both sockets
 *   at once, with an RST to each peer we have not sent FIN to yet.
 *
 * Forwarding is a tight data/write/drain loop (backpressure: pause the
 * reader when the writer's buffer is full, resume on drain), so buffering per
 * direction stays within one socket high-water mark plus one chunk. Bytes are
 * read from the sockets' own counters at close: no per-chunk work besides
 * the write. Idle/half-close timers use the sockets' own timeouts, which
 * both reads and writes refresh, so one timer per socket covers both ways.
 */
import { connect as netConnect, createServer, type Server, type Socket, type TcpNetConnectOpts } from 'node:net';
import { parseEndpoint, unmapIP, type CloseReason, type PickResult, type ProxyEventHandler } from './proxy-events.ts';
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
  /** TCP keepalive idle time on both sockets; default 15 000 (Go's default, which upstream inherited). */
  readonly keepAliveMs?: number;
  readonly backlog?: number;
  /** Opens the connection to an endpoint (tests). Default net.connect; must honour allowHalfOpen. */
  readonly connect?: (options: TcpNetConnectOpts) => Socket;
}

export const DEFAULT_DIAL_TIMEOUTS_MS: readonly number[] = [250, 500, 1000, 2000];
export const DEFAULT_HALF_CLOSE_TIMEOUT_MS = 300_000;

interface Conn {
  readonly client: Socket;
  readonly clientIP: string;
  readonly clientAddr: string;
  readonly start: number;
  backend: Socket | null;
  endpoint: string | null;
  dialTimer: NodeJS.Timeout | null;
  /** Number of directions whose FIN was received (0..2). */
  ended: number;
  /** Number of sockets whose write side finished (0..2). */
  finished: number;
  closed: boolean;
}

const noop = (): void => {};

export class TcpProxy {
  private readonly o: TcpProxyOptions;
  private readonly emit: ProxyEventHandler | null;
  private readonly dialTimeouts: readonly number[];
  private readonly halfCloseMs: number;
  private readonly idleMs: number;
  private readonly keepAliveMs: number;
  private readonly dial: (options: TcpNetConnectOpts) => Socket;
  private readonly conns = new Set<Conn>();
  private server: Server | null = null;
  private boundPort = 0;

  constructor(options: TcpProxyOptions) {
    this.o = options;
    this.emit = options.onEvent ?? null;
    this.dialTimeouts = options.dialTimeoutsMs ?? DEFAULT_DIAL_TIMEOUTS_MS;
    this.halfCloseMs = options.halfCloseTimeoutMs ?? DEFAULT_HALF_CLOSE_TIMEOUT_MS;
    this.idleMs = options.idleTimeoutMs ?? 0;
    this.keepAliveMs = options.keepAliveMs ?? 15_000;
    this.dial = options.connect ?? netConnect;
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

  /** Starts listening; resolves with the bound port, rejects with the socket error (EADDRINUSE...). */
  listen(): Promise<number> {
    if (this.server) return Promise.reject(new Error(`${this.o.id}: already listening`));
    const server = createServer(
      { allowHalfOpen: true, pauseOnConnect: true, noDelay: true, keepAlive: true, keepAliveInitialDelay: this.keepAliveMs },
      (socket) => this.accept(socket),
    );
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', (err) => {
        this.server = null;
        reject(err);
      });
      server.listen({ host: this.o.host, port: this.o.port, backlog: this.o.backlog ?? 4096 }, () => {
        server.removeAllListeners('error');
        server.on('error', (err: NodeJS.ErrnoException) =>
          this.emit?.({ type: 'listener-error', id: this.o.id, code: err.code ?? 'EIO', message: err.message }),
        );
        const addr = server.address();
        this.boundPort = addr && typeof addr === 'object' ? addr.port : 0;
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
    await done;
  }

  private accept(client: Socket): void {
    const ip = client.remoteAddress;
    const clientIP = ip ? unmapIP(ip) : '';
    const c: Conn = {
      client,
      clientIP,
      clientAddr: endpointString({ ip: clientIP, port: client.remotePort ?? 0 }),
      start: performance.now(),
      backend: null,
      endpoint: null,
      dialTimer: null,
      ended: 0,
      finished: 0,
      closed: false,
    };
    this.conns.add(c);
    this.emit?.({ type: 'accepted', id: this.o.id, client: c.clientAddr });
    client.on('error', (err: Error) => this.finish(c, 'error', err.message));
    client.on('close', () => this.onClose(c, client));
    if (!ip) return this.finish(c, 'error', 'client gone before accept');
    this.attempt(c, 0);
  }

  /** Dial attempt n: pick, connect with timeout, next attempt on failure. */
  private attempt(c: Conn, n: number): void {
    if (c.closed) return;
    if (n >= this.dialTimeouts.length) return this.finish(c, 'dial failed');
    const picked = this.o.pick(c.clientIP, n);
    if ('error' in picked) return this.finish(c, 'no endpoint', picked.error);
    const ep = parseEndpoint(picked.endpoint);
    if (!ep) {
      this.dialFailed(c, picked.endpoint, n, 'EINVAL');
      return this.attempt(c, n + 1);
    }
    const t0 = performance.now();
    const backend = this.dial({
      host: ep.host,
      port: ep.port,
      family: ep.family,
      allowHalfOpen: true,
      noDelay: true,
      keepAlive: true,
      keepAliveInitialDelay: this.keepAliveMs,
    });
    c.backend = backend;
    const fail = (code: string): void => {
      if (c.dialTimer) clearTimeout(c.dialTimer);
      c.dialTimer = null;
      backend.removeAllListeners();
      backend.on('error', noop);
      backend.destroy();
      c.backend = null;
      if (c.closed) return;
      this.dialFailed(c, picked.endpoint, n, code);
      this.attempt(c, n + 1);
    };
    c.dialTimer = setTimeout(() => fail('ETIMEDOUT'), this.dialTimeouts[n]);
    backend.once('error', (err: NodeJS.ErrnoException) => fail(err.code ?? 'EIO'));
    backend.once('connect', () => {
      if (c.dialTimer) clearTimeout(c.dialTimer);
      c.dialTimer = null;
      backend.removeAllListeners('error');
      c.endpoint = picked.endpoint;
      this.emit?.({ type: 'connected', id: this.o.id, client: c.clientAddr, endpoint: picked.endpoint, attempt: n, dialMs: performance.now() - t0 });
      this.splice(c, backend);
    });
  }

  private dialFailed(c: Conn, endpoint: string, attempt: number, code: string): void {
    this.emit?.({ type: 'dial-failed', id: this.o.id, client: c.clientAddr, endpoint, attempt, code });
  }

  /** Full-duplex copy with backpressure and half-close. */
  private splice(c: Conn, backend: Socket): void {
    const client = c.client;
    client.on('data', (chunk: Buffer) => {
      if (!backend.write(chunk)) client.pause();
    });
    backend.on('drain', () => client.resume());
    backend.on('data', (chunk: Buffer) => {
      if (!client.write(chunk)) backend.pause();
    });
    client.on('drain', () => backend.resume());
    client.on('end', () => {
      backend.end();
      this.onEnd(c);
    });
    backend.on('end', () => {
      client.end();
      this.onEnd(c);
    });
    const onFinish = (): void => {
      if (++c.finished === 2) this.finish(c, 'done');
    };
    client.on('finish', onFinish);
    backend.on('finish', onFinish);
    backend.on('error', (err: Error) => this.finish(c, 'error', err.message));
    backend.on('close', () => this.onClose(c, backend));
    const onTimeout = (): void => this.finish(c, c.ended > 0 ? 'half-close timeout' : 'idle');
    client.on('timeout', onTimeout);
    backend.on('timeout', onTimeout);
    if (this.idleMs > 0) {
      client.setTimeout(this.idleMs);
      backend.setTimeout(this.idleMs);
    }
    client.resume();
  }

  /** A FIN arrived: arm the half-close limit (on both sockets: either may close itself first). */
  private onEnd(c: Conn): void {
    if (++c.ended !== 1) return;
    const ms = this.idleMs > 0 && (this.halfCloseMs === 0 || this.idleMs < this.halfCloseMs) ? this.idleMs : this.halfCloseMs;
    if (ms === 0) return;
    c.client.setTimeout(ms);
    c.backend?.setTimeout(ms);
  }

  /** A socket closed: fine once its write side finished (the other will follow), else the connection broke. */
  private onClose(c: Conn, s: Socket): void {
    if (!c.closed && !s.writableFinished) this.finish(c, 'error', 'socket closed');
  }

  private finish(c: Conn, reason: CloseReason, error?: string): void {
    if (c.closed) return;
    c.closed = true;
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

/**
 * Destroys a socket, with an RST when asked and possible: libuv does not
 * reset a socket whose write side is shut down (it fails while the shutdown
 * is in flight), so a socket we already sent FIN on is closed plainly.
 */
function close(s: Socket, reset: boolean): void {
  if (reset && !s.destroyed && !s.connecting && !s.writableEnded) s.resetAndDestroy();
  else s.destroy();
}
