/**
 * One proxied TCP connection (the accepted client socket and the socket to
 * the endpoint) and the handlers that copy bytes between its two sockets.
 * The handlers are shared by every connection (`this` is the socket, which
 * names its connection through a symbol property): no closures are made per
 * connection beyond the two read-buffer hooks. The listener side (accept,
 * dial with retries, events, close) is tcp-proxy.ts, the `ConnOwner` of its
 * connections.
 *
 * The copy loop, the same in both directions (a `Flow`):
 * - both sockets read into buffers the proxy owns (the sockets' `onread`:
 *   the endpoint socket's from net.connect, the client's from
 *   own-read-socket.ts) instead of a fresh 64 KiB allocation per read, whose
 *   churn makes V8 collect the whole heap (the agent's informer caches
 *   included) again and again while a connection streams, and lands every
 *   read in memory no cache has seen. Reads up to 16 KiB land in one scratch
 *   buffer shared by the listener and are copied out; once a read fills it,
 *   the flow takes a 64 KiB buffer of its own from a small pool, writes
 *   straight from it, pauses the reading socket while such a write is in
 *   flight, and gives the buffer back at the first short read or at close;
 * - backpressure: a copied-out write that the other socket cannot take
 *   (write() returns false) pauses the reader until that socket's 'drain',
 *   so buffering stays within one socket high-water mark plus one read;
 * - a FIN is passed on with end(); when the second FIN arrives and nothing
 *   waits to be written, both sockets are closed at once (close() sends the
 *   FIN) rather than shut down and waited for;
 * - bytes are read from the sockets' own counters at close: no per-chunk
 *   bookkeeping.
 */
import type { Socket } from 'node:net';
import type { CloseReason } from './proxy-events.ts';
import { endpointString } from '../proxier/types.ts';

/** The connection a socket belongs to. */
export const CONN = Symbol('conn');
export type ProxySocket = Socket & { [CONN]?: Conn };

/** What the handlers ask of the listener that owns a connection. */
export interface ConnOwner {
  readonly buffers: ReadBuffers;
  /** Inactivity limit once one side has sent FIN; 0 = none. */
  readonly halfCloseLimitMs: number;
  /** The dial of attempt `c.attempt` failed (errno code, ETIMEDOUT for our timer): drop its socket, try the next. */
  retry(c: Conn, code: string): void;
  /** The endpoint socket of `c` connected. */
  connected(c: Conn): void;
  finish(c: Conn, reason: CloseReason, error?: string): void;
}

const SCRATCH_BYTES = 16 * 1024;
const OWN_BYTES = 64 * 1024;
/** Own buffers kept for reuse per listener. */
const POOL_MAX = 16;

/** Read buffers of one listener's endpoint sockets: the shared scratch buffer and a pool of own ones. */
export class ReadBuffers {
  readonly scratch = Buffer.allocUnsafe(SCRATCH_BYTES);
  private readonly pool: Buffer[] = [];

  take(): Buffer {
    return this.pool.pop() ?? Buffer.allocUnsafe(OWN_BYTES);
  }

  /** A buffer no pending write points into any more. */
  give(b: Buffer): void {
    if (this.pool.length < POOL_MAX) this.pool.push(b);
  }
}

/** One direction of a connection: what its reading socket reads into, and the write in flight from it. */
export class Flow {
  /** The reading socket's own buffer (null: it reads into the listener's scratch buffer). */
  readBuf: Buffer | null = null;
  /** A write from readBuf is in flight: the reading socket is paused until it completes. */
  inFlight = false;
  /** Completion callback of writes from readBuf (made once, for flows that stream). */
  written: (() => void) | null = null;
  /** The socket's onread.buffer: called after every read, for the next one. */
  readonly nextReadBuffer: () => Buffer;

  constructor(scratch: Buffer) {
    this.nextReadBuffer = (): Buffer => this.readBuf ?? scratch;
  }

  /** Gives the own buffer back to the pool, unless a write still points into it (left to the garbage collector). */
  release(buffers: ReadBuffers): void {
    if (this.readBuf && !this.inFlight) buffers.give(this.readBuf);
    this.readBuf = null;
  }
}

export class Conn {
  backend: ProxySocket | null = null;
  endpoint: string | null = null;
  dialTimer: NodeJS.Timeout | null = null;
  attempt = 0;
  /** When the current dial started (performance.now()). */
  dialStart = 0;
  /** The endpoint socket finished connecting. */
  connected = false;
  /** Number of directions whose FIN was received (0..2). */
  ended = 0;
  closed = false;
  /** Seen by one keepalive sweep (switched on at the next). */
  swept = false;
  keepAlive = false;
  /** Client -> endpoint. */
  readonly up: Flow;
  /** Endpoint -> client. */
  readonly down: Flow;
  private addr: string | null = null;
  readonly owner: ConnOwner;
  readonly client: ProxySocket;
  readonly clientIP: string;
  readonly start: number;

  /** `client` is made by `wrap` from the read-buffer hook of the up flow (the accepted socket, re-wrapped). */
  constructor(owner: ConnOwner, wrap: (nextReadBuffer: () => Buffer) => Socket, clientIP: string, start: number) {
    this.owner = owner;
    this.up = new Flow(owner.buffers.scratch);
    this.down = new Flow(owner.buffers.scratch);
    const client: ProxySocket = wrap(this.up.nextReadBuffer);
    this.client = client;
    this.clientIP = clientIP;
    this.start = start;
    client[CONN] = this;
  }

  /** "ip:port" of the client, made once, when an event needs it. */
  get clientAddr(): string {
    return (this.addr ??= endpointString({ ip: this.clientIP, port: this.client.remotePort ?? 0 }));
  }

  /** Starts copying both ways (the endpoint socket is connected). */
  startCopy(idleMs: number, timeouts: boolean): void {
    const client = this.client;
    const backend = this.backend!;
    // Only a client socket that could not be given read buffers (own-read-socket.ts) emits 'data'.
    client.on('data', onData);
    client.on('drain', onDrain);
    backend.on('drain', onDrain);
    client.on('end', onEnd);
    backend.on('end', onEnd);
    backend.on('close', onSocketClose);
    if (timeouts) {
      client.on('timeout', onTimeout);
      backend.on('timeout', onTimeout);
    }
    if (idleMs > 0) {
      client.setTimeout(idleMs);
      backend.setTimeout(idleMs);
    }
    client.resume();
  }

  /** Destroys both sockets, with an RST to each peer when `abort`; returns the own read buffers. */
  destroy(abort: boolean): void {
    this.up.release(this.owner.buffers);
    this.down.release(this.owner.buffers);
    if (this.dialTimer) clearTimeout(this.dialTimer);
    this.dialTimer = null;
    closeSocket(this.client, abort);
    if (this.backend) closeSocket(this.backend, abort);
  }
}

/** The socket across from `s` in its connection. */
function other(c: Conn, s: Socket): ProxySocket {
  return s === c.client ? c.backend! : c.client;
}

function onData(this: ProxySocket, chunk: Buffer): void {
  if (!other(this[CONN]!, this).write(chunk)) this.pause();
}

function onDrain(this: ProxySocket): void {
  other(this[CONN]!, this).resume();
}

/**
 * The onread.callback of both sockets of a connection (`this` is the one
 * that read): n bytes are in buf. Returning false pauses the socket.
 */
export function onRead(this: ProxySocket, n: number, buf: Uint8Array): boolean {
  const c = this[CONN]!;
  const up = this === c.client;
  const f = up ? c.up : c.down;
  const to = up ? c.backend! : c.client;
  if (buf !== f.readBuf) {
    // The shared scratch buffer: the next read of any socket overwrites it, so copy.
    if (n === buf.length) f.readBuf = c.owner.buffers.take();
    return to.write(Buffer.from(buf.subarray(0, n)));
  }
  f.written ??= written(c, f, this);
  to.write(buf.subarray(0, n), f.written);
  if (to.writableLength > 0) {
    // The kernel did not take it all: the write still reads from buf.
    f.inFlight = true;
    return false;
  }
  if (n < SCRATCH_BYTES) {
    c.owner.buffers.give(f.readBuf);
    f.readBuf = null;
  }
  return true;
}

/** The completion callback of writes from a flow's own buffer: resumes its reader. */
function written(c: Conn, f: Flow, reader: Socket): () => void {
  return (): void => {
    if (!f.inFlight) return;
    f.inFlight = false;
    if (!c.closed) reader.resume();
  };
}

/** A FIN arrived: pass it on; once both came, close. */
function onEnd(this: ProxySocket): void {
  const c = this[CONN]!;
  const to = other(c, this);
  if (++c.ended === 1) {
    to.end();
    // Arm the half-close limit on both sockets: either may close itself first.
    const ms = c.owner.halfCloseLimitMs;
    if (ms > 0) {
      c.client.setTimeout(ms);
      c.backend!.setTimeout(ms);
    }
    return;
  }
  // Both FINs are in, so both read sides are drained: when nothing waits
  // to be written, close() sends our FIN to `to` (no shutdown call);
  // otherwise end() it and finish once both write sides are done.
  if (c.client.writableLength === 0 && c.backend!.writableLength === 0) return c.owner.finish(c, 'done');
  to.end();
  c.client.on('finish', onFinish);
  c.backend!.on('finish', onFinish);
  onFinish.call(to);
}

function onFinish(this: ProxySocket): void {
  const c = this[CONN]!;
  if (c.client.writableFinished && c.backend!.writableFinished) c.owner.finish(c, 'done');
}

function onTimeout(this: ProxySocket): void {
  const c = this[CONN]!;
  c.owner.finish(c, c.ended > 0 ? 'half-close timeout' : 'idle');
}

export function onSocketError(this: ProxySocket, err: NodeJS.ErrnoException): void {
  const c = this[CONN]!;
  if (this !== c.client && !c.connected && c.backend === this) return c.owner.retry(c, err.code ?? 'EIO');
  c.owner.finish(c, 'error', err.message);
}

/** A socket closed: fine once its write side finished, else the connection broke. */
export function onSocketClose(this: ProxySocket): void {
  const c = this[CONN]!;
  if (!c.closed && !this.writableFinished) c.owner.finish(c, 'error', 'socket closed');
}

export function onBackendConnect(this: ProxySocket): void {
  const c = this[CONN]!;
  if (c.backend === this && !c.closed) c.owner.connected(c);
}

export function onDialTimeout(c: Conn, backend: ProxySocket): void {
  if (c.backend !== backend || c.closed || c.connected) return;
  c.dialTimer = null;
  c.owner.retry(c, 'ETIMEDOUT');
}

/**
 * Destroys a socket, with an RST when asked and possible: libuv does not
 * reset a socket whose write side is shut down (it fails while the shutdown
 * is in flight), so a socket we already sent FIN on is closed plainly.
 */
function closeSocket(s: Socket, reset: boolean): void {
  if (reset && !s.destroyed && !s.connecting && !s.writableEnded) s.resetAndDestroy();
  else s.destroy();
}
