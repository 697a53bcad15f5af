/**
 * The userspace UDP proxy of one service port. One socket is bound to the
 * listener address; each client address ("ip:port") gets a session: the
 * first datagram from an unknown client picks an endpoint and opens a socket
 * connected to it, later datagrams go through that socket, and the
 * endpoint's replies are sent back to the client FROM THE LISTENER SOCKET,
 * so conntrack un-NATs them to the service address the client used.
 *
 * A session ends after `idleTimeoutMs` (upstream's --udp-timeout, default
 * 250 ms) without a datagram in either direction, or at once on an error of
 * its socket (a connected UDP socket reports ICMP port unreachable as
 * ECONNREFUSED); the next datagram starts a new session, picking again.
 * Datagrams are never truncated (upstream read into 4096 bytes, issue
 * #47659): Node receives up to 64 KiB, so 65 507-byte payloads pass.
 * Datagrams that arrive while a session's socket is still connecting are
 * queued (bounded; beyond it they are dropped, like any UDP overflow).
 *
 * Sessions cannot outlive the listener: their replies leave through it, so
 * close() and closeAll() both end every session. With host '::' the socket
 * is dual-stack (IPv4 clients appear as ::ffff:a.b.c.d, unmapped for pick)
 * unless net.ipv6.bindv6only=1.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { parseEndpoint, unmapIP, type PickResult, type ProxyEventHandler, type UdpEndReason } from './proxy-events.ts';
import { timerDelay } from '../proxier/clock.ts';
import { endpointString } from '../proxier/types.ts';

export interface UdpProxyOptions {
  readonly id: string;
  /** '0.0.0.0', '::' or a specific IP. */
  readonly host: string;
  /** 0 = any free port. */
  readonly port: number;
  readonly pick: (clientIP: string) => PickResult;
  /** A session ends after this long without traffic either way. Default 250. */
  readonly idleTimeoutMs?: number;
  readonly onEvent?: ProxyEventHandler;
  /** SO_RCVBUF of the listener socket (the kernel caps it at net.core.rmem_max). Default 4 MiB. */
  readonly recvBufferSize?: number;
}

export const DEFAULT_UDP_IDLE_TIMEOUT_MS = 250;
/** Datagrams held per session while its socket connects. */
const MAX_PENDING = 64;

interface Session {
  readonly key: string;
  readonly clientAddress: string;
  readonly clientPort: number;
  readonly client: string;
  readonly endpoint: string;
  readonly socket: Socket;
  readonly start: number;
  /** Datagrams waiting for the connect; null once connected. */
  pending: Buffer[] | null;
  lastActive: number;
  timer: NodeJS.Timeout | null;
  ended: boolean;
  dgToEndpoint: number;
  dgToClient: number;
  bytesToEndpoint: number;
  bytesToClient: number;
}

export class UdpProxy {
  private readonly o: UdpProxyOptions;
  private readonly idleMs: number;
  private readonly sessions = new Map<string, Session>();
  private socket: Socket | null = null;
  private boundPort = 0;

  constructor(options: UdpProxyOptions) {
    this.o = options;
    this.idleMs = options.idleTimeoutMs ?? DEFAULT_UDP_IDLE_TIMEOUT_MS;
  }

  get port(): number {
    return this.boundPort;
  }

  get activeSessions(): number {
    return this.sessions.size;
  }

  /** Binds; resolves with the bound port, rejects with the socket error (EADDRINUSE...). */
  listen(): Promise<number> {
    if (this.socket) return Promise.reject(new Error(`${this.o.id}: already listening`));
    const socket = createSocket({ type: this.o.host.includes(':') ? 'udp6' : 'udp4' });
    this.socket = socket;
    return new Promise((resolve, reject) => {
      socket.once('error', (err) => {
        this.socket = null;
        try {
          socket.close();
        } catch {
          // Never bound: nothing to release.
        }
        reject(err);
      });
      socket.bind({ address: this.o.host, port: this.o.port, exclusive: true }, () => {
        socket.removeAllListeners('error');
        socket.on('error', (err: NodeJS.ErrnoException) =>
          this.o.onEvent?.({ type: 'listener-error', id: this.o.id, code: err.code ?? 'EIO', message: err.message }),
        );
        try {
          socket.setRecvBufferSize(this.o.recvBufferSize ?? 4 << 20);
        } catch {
          // Best effort: the default buffer still works, bursts just drop sooner.
        }
        socket.on('message', (msg: Buffer, rinfo: RemoteInfo) => this.onClientDatagram(msg, rinfo));
        this.boundPort = socket.address().port;
        resolve(this.boundPort);
      });
    });
  }

  /** Ends every session and releases the port. */
  close(): Promise<void> {
    for (const s of [...this.sessions.values()]) this.end(s, 'shutdown');
    const socket = this.socket;
    this.socket = null;
    if (!socket) return Promise.resolve();
    return new Promise((resolve) => socket.close(() => resolve()));
  }

  /** Same as close(): UDP sessions cannot outlive the listener socket. */
  closeAll(): Promise<void> {
    return this.close();
  }

  private onClientDatagram(msg: Buffer, rinfo: RemoteInfo): void {
    const key = `${rinfo.address}|${rinfo.port}`;
    const s = this.sessions.get(key) ?? this.startSession(key, rinfo);
    if (!s) return;
    s.lastActive = performance.now();
    s.dgToEndpoint++;
    s.bytesToEndpoint += msg.length;
    if (!s.pending) s.socket.send(msg);
    else if (s.pending.length < MAX_PENDING) s.pending.push(msg);
    else this.o.onEvent?.({ type: 'udp-dropped', id: this.o.id, client: s.client, reason: 'queue full' });
  }

  private startSession(key: string, rinfo: RemoteInfo): Session | null {
    const clientIP = unmapIP(rinfo.address);
    const client = endpointString({ ip: clientIP, port: rinfo.port });
    const picked = this.o.pick(clientIP);
    const ep = 'error' in picked ? null : parseEndpoint(picked.endpoint);
    if ('error' in picked || !ep) {
      const error = 'error' in picked ? picked.error : `malformed endpoint ${JSON.stringify(picked.endpoint)}`;
      this.o.onEvent?.({ type: 'udp-dropped', id: this.o.id, client, reason: 'no endpoint', error });
      return null;
    }
    const now = performance.now();
    const s: Session = {
      key,
      clientAddress: rinfo.address,
      clientPort: rinfo.port,
      client,
      endpoint: picked.endpoint,
      socket: createSocket({ type: ep.family === 6 ? 'udp6' : 'udp4' }),
      start: now,
      pending: [],
      lastActive: now,
      timer: null,
      ended: false,
      dgToEndpoint: 0,
      dgToClient: 0,
      bytesToEndpoint: 0,
      bytesToClient: 0,
    };
    this.sessions.set(key, s);
    s.socket.on('message', (reply: Buffer) => {
      s.lastActive = performance.now();
      s.dgToClient++;
      s.bytesToClient += reply.length;
      this.socket?.send(reply, s.clientPort, s.clientAddress);
    });
    s.socket.on('error', (err: Error) => this.end(s, 'error', err.message));
    s.socket.connect(ep.port, ep.host, () => {
      if (s.ended) return;
      const queued = s.pending ?? [];
      s.pending = null;
      for (const m of queued) s.socket.send(m);
    });
    s.timer = setTimeout(() => this.checkIdle(s), timerDelay(this.idleMs));
    this.o.onEvent?.({ type: 'udp-session-start', id: this.o.id, client, endpoint: s.endpoint });
    return s;
  }

  /** One timer per session, re-armed for the remaining time instead of being reset per datagram. */
  private checkIdle(s: Session): void {
    s.timer = null;
    if (s.ended) return;
    const idle = performance.now() - s.lastActive;
    if (idle >= this.idleMs) this.end(s, 'idle');
    else s.timer = setTimeout(() => this.checkIdle(s), timerDelay(this.idleMs - idle));
  }

  private end(s: Session, reason: UdpEndReason, error?: string): void {
    if (s.ended) return;
    s.ended = true;
    if (s.timer) clearTimeout(s.timer);
    s.timer = null;
    this.sessions.delete(s.key);
    s.socket.removeAllListeners('message');
    s.socket.on('error', () => {});
    s.socket.close();
    this.o.onEvent?.({
      type: 'udp-session-end',
      id: this.o.id,
      client: s.client,
      endpoint: s.endpoint,
      reason,
      datagramsToEndpoint: s.dgToEndpoint,
      datagramsToClient: s.dgToClient,
      bytesToEndpoint: s.bytesToEndpoint,
      bytesToClient: s.bytesToClient,
      durationMs: performance.now() - s.start,
      ...(error === undefined ? {} : { error }),
    });
  }
}
