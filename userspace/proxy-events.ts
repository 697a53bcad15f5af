/**
 * The vocabulary shared by the userspace TCP and UDP proxies: what a proxy
 * asks the balancer (`Pick`), what it reports (`ProxyEvent`), and the
 * endpoint address form ("ip:port", "[ipv6]:port").
 *
 * Events are few and coarse on purpose: one per connection state change,
 * never one per chunk. Byte counts arrive once, on `closed` (TCP) and
 * `udp-session-end` (UDP), tagged by direction, so the agent can keep its
 * counters (active/total connections, bytes, dial failures, rejections) with
 * a switch on `type` and no state of its own. Every `accepted` is followed
 * by exactly one `closed`, every `udp-session-start` by exactly one
 * `udp-session-end`, so gauges of active connections always return to 0.
 * Handlers run synchronously inside the proxy and must not throw.
 */
import { isIP } from 'node:net';

/** The balancer's answer: an endpoint "ip:port" / "[ipv6]:port", or why there is none. */
export type PickResult = { readonly endpoint: string } | { readonly error: string };

/** Why a TCP connection ended. */
export type CloseReason =
  | 'done' // both directions finished (FIN both ways)
  | 'idle' // no bytes either way for idleTimeoutMs
  | 'half-close timeout' // one side sent FIN, then nothing moved for halfCloseTimeoutMs
  | 'error' // reset or socket error on either side
  | 'no endpoint' // the balancer had no endpoint: closed right after accept
  | 'dial failed' // every dial attempt failed or timed out
  | 'shutdown'; // closeAll()

export type UdpEndReason = 'idle' | 'error' | 'shutdown';

/** Why a UDP datagram from a client was not forwarded. */
export type UdpDropReason = 'no endpoint' | 'queue full';

interface Base {
  /** The listener's id (the service port's listener spec id). */
  readonly id: string;
}

export type ProxyEvent =
  /** A TCP client connected to the listener ("ip:port" / "[ipv6]:port", IPv4-mapped prefix removed). */
  | (Base & { readonly type: 'accepted'; readonly client: string })
  /** The connection to an endpoint is up; attempt counts from 0. */
  | (Base & { readonly type: 'connected'; readonly client: string; readonly endpoint: string; readonly attempt: number; readonly dialMs: number })
  /** One dial attempt failed: errno code (ECONNREFUSED...), ETIMEDOUT for the proxy's own dial timeout, EINVAL for a malformed endpoint. */
  | (Base & { readonly type: 'dial-failed'; readonly client: string; readonly endpoint: string; readonly attempt: number; readonly code: string })
  /**
   * The TCP connection is gone (both sockets destroyed). Bytes are those
   * received from each side; endpoint is null when none was connected.
   */
  | (Base & {
      readonly type: 'closed';
      readonly client: string;
      readonly endpoint: string | null;
      readonly reason: CloseReason;
      readonly bytesToEndpoint: number;
      readonly bytesToClient: number;
      readonly durationMs: number;
      readonly error?: string;
    })
  /** A datagram from an unknown client address opened a session to an endpoint. */
  | (Base & { readonly type: 'udp-session-start'; readonly client: string; readonly endpoint: string })
  | (Base & {
      readonly type: 'udp-session-end';
      readonly client: string;
      readonly endpoint: string;
      readonly reason: UdpEndReason;
      readonly datagramsToEndpoint: number;
      readonly datagramsToClient: number;
      readonly bytesToEndpoint: number;
      readonly bytesToClient: number;
      readonly durationMs: number;
      readonly error?: string;
    })
  | (Base & { readonly type: 'udp-dropped'; readonly client: string; readonly reason: UdpDropReason; readonly error?: string })
  /** The listening socket reported an error (accept failure such as EMFILE); it keeps listening. */
  | (Base & { readonly type: 'listener-error'; readonly code: string; readonly message: string });

export type ProxyEventHandler = (event: ProxyEvent) => void;

export interface Endpoint {
  readonly host: string;
  readonly port: number;
  readonly family: 4 | 6;
}

/** Parses "ip:port" or "[ipv6]:port" (IP literals only, port 1-65535); null when malformed. */
export function parseEndpoint(s: string): Endpoint | null {
  let host: string;
  let port: string;
  if (s.startsWith('[')) {
    const end = s.indexOf(']:');
    if (end < 0) return null;
    host = s.slice(1, end);
    port = s.slice(end + 2);
  } else {
    const colon = s.lastIndexOf(':');
    if (colon < 0) return null;
    host = s.slice(0, colon);
    port = s.slice(colon + 1);
  }
  const family = isIP(host);
  if (family === 0 || (family === 6) !== s.startsWith('[')) return null;
  if (!/^[0-9]{1,5}$/.test(port)) return null;
  const n = Number(port);
  if (n < 1 || n > 65535) return null;
  return { host, port: n, family: family === 4 ? 4 : 6 };
}

/** The client IP as the balancer sees it: IPv4-mapped IPv6 ("::ffff:10.0.0.1") becomes plain IPv4. */
export function unmapIP(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}
