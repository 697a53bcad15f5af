/**
 * The listeners userspace mode opens for real: a TcpProxy or UdpProxy per
 * service port and role, picking endpoints through the balancer under the
 * listener's id. Every connection event and every listener opened or closed
 * goes to one handler, with the service port it belongs to (src/ counts them).
 */
import type { ListenerOpener } from './listeners.ts';
import type { ProxyEvent } from './proxy-events.ts';
import type { RoundRobinBalancer } from './round-robin.ts';
import { TcpProxy } from './tcp-proxy.ts';
import { UdpProxy } from './udp-proxy.ts';

/** A listener of the proxy was opened or closed. */
export interface ListenerEvent {
  readonly type: 'listener-opened' | 'listener-closed';
  readonly id: string;
}

export type UserspaceEvent = ProxyEvent | ListenerEvent;

export interface ProxyOpenerOptions {
  /** Address the listeners bind: --bind-address ('::' for the default on an IPv6-only node). */
  readonly host: string;
  readonly balancer: RoundRobinBalancer;
  /** --udp-timeout: a UDP session without traffic for this long ends. */
  readonly udpIdleTimeoutMs: number;
  readonly onEvent?: (service: string, e: UserspaceEvent) => void;
}

export function proxyOpener(o: ProxyOpenerOptions): ListenerOpener {
  return async (spec, port) => {
    const emit = o.onEvent;
    const common = { id: spec.id, host: o.host, port, ...(emit ? { onEvent: (e: ProxyEvent) => emit(spec.service, e) } : {}) };
    const proxy =
      spec.protocol === 'TCP'
        ? new TcpProxy({ ...common, pick: (clientIP: string, attempt: number) => o.balancer.next(spec.id, clientIP, attempt > 0) })
        : new UdpProxy({ ...common, pick: (clientIP: string) => o.balancer.next(spec.id, clientIP), idleTimeoutMs: o.udpIdleTimeoutMs });
    const actual = await proxy.listen();
    emit?.(spec.service, { type: 'listener-opened', id: spec.id });
    let closed = false;
    return {
      port: actual,
      async close() {
        if (closed) return;
        closed = true;
        emit?.(spec.service, { type: 'listener-closed', id: spec.id });
        await proxy.close();
      },
    };
  };
}
