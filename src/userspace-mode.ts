/**
 * --mode=userspace as the agent runs it: the UserspaceBackend with real TCP
 * and UDP proxies as its listeners, the round-robin balancer they pick from,
 * the proxy port allocator, UDP conntrack cleanup, userspace metrics, and the
 * affinity sweep. Single-stack, as upstream: the family of --bind-address
 * (IPv4 for the default 0.0.0.0 when this node has IPv4 iptables).
 */
import { networkInterfaces } from 'node:os';
import type { IPFamily } from '../proxier/types.ts';
import { TcpProxy } from '../userspace/tcp-proxy.ts';
import { UdpProxy } from '../userspace/udp-proxy.ts';
import type { ProxyEvent } from '../userspace/proxy-events.ts';
import { parsePortRange, PortAllocator } from '../userspace/port-allocator.ts';
import { RoundRobinBalancer } from '../userspace/round-robin.ts';
import { UserspaceBackend } from '../userspace/userspace-backend.ts';
import type { ListenerOpener } from '../userspace/listeners.ts';
import type { ProxyConfig } from './config.ts';
import type { ModeDeps, ModeRuntime } from './modes.ts';
import type { NodeProbe } from './node-probe.ts';
import { createUserspaceMetrics, type UserspaceMetrics } from './servers/userspace-metrics.ts';
import { createConntrack } from '../proxier/conntrack.ts';
import { every } from '../proxier/clock.ts';

/** How often expired ClientIP affinity records are dropped. */
const AFFINITY_SWEEP_MS = 10_000;

export function userspaceFamily(config: ProxyConfig, probe: NodeProbe): IPFamily {
  if (config.bindAddress.includes(':')) return 'IPv6';
  if (config.bindAddress === '0.0.0.0' && !probe.handles.has('IPv4') && probe.handles.has('IPv6')) return 'IPv6';
  return 'IPv4';
}

/** An address of this host of the family (the interface address host-originated portal traffic is DNATed to). */
export function interfaceAddress(family: IPFamily): string {
  const candidates = Object.values(networkInterfaces()).flatMap((list) => list ?? []);
  const ok = candidates.filter((a) => !a.internal && a.family === family && !(family === 'IPv6' && a.address.startsWith('fe80:')));
  return ok[0]?.address ?? (family === 'IPv6' ? '::1' : '127.0.0.1');
}

export function userspaceMode(config: ProxyConfig, probe: NodeProbe, deps: ModeDeps): ModeRuntime {
  const log = deps.logger;
  if (config.bindAddress === '127.0.0.1' || config.bindAddress === '::1') {
    throw new Error(`--bind-address ${config.bindAddress}: the userspace proxy cannot listen on localhost only (portal traffic arrives on the node's addresses)`);
  }
  const family = userspaceFamily(config, probe);
  const iptables = probe.handles.get(family);
  if (!iptables) throw new Error(`userspace mode needs ${family === 'IPv4' ? 'iptables' : 'ip6tables'} (the family of --bind-address ${config.bindAddress}), which does not work on this node`);
  const host = config.bindAddress === '0.0.0.0' && family === 'IPv6' ? '::' : config.bindAddress;
  const range = config.portRange && config.portRange !== '0' && config.portRange !== '0-0' ? parsePortRange(config.portRange) : null;
  const now = (): number => deps.clock.now();
  const balancer = new RoundRobinBalancer({ now });
  const metrics = createUserspaceMetrics(deps.metrics.registry);

  const opener: ListenerOpener = async (spec, port) => {
    const common = { id: spec.id, host, port, onEvent: proxyEventMetrics(metrics, spec.service) };
    const proxy =
      spec.protocol === 'TCP'
        ? new TcpProxy({ ...common, pick: (clientIP: string, attempt: number) => balancer.next(spec.id, clientIP, attempt > 0) })
        : new UdpProxy({ ...common, pick: (clientIP: string) => balancer.next(spec.id, clientIP), idleTimeoutMs: config.udpIdleTimeoutMs });
    const actual = await proxy.listen();
    metrics.listeners.inc();
    let closed = false;
    return {
      port: actual,
      async close() {
        if (closed) return;
        closed = true;
        metrics.listeners.dec();
        await proxy.close();
      },
    };
  };

  const backend = new UserspaceBackend({
    iptables,
    balancer,
    allocator: new PortAllocator(range),
    opener,
    fallbackHostIP: () => interfaceAddress(family),
    bindAddress: config.bindAddress,
    detectLocal: { mode: config.detectLocalMode, clusterCIDRs: config.clusterCIDRs, bridgeInterface: config.bridgeInterface, interfaceNamePrefix: config.interfaceNamePrefix },
    logger: log,
    now,
    conntrack: createConntrack({ runner: deps.runner }),
    onServiceError: (service) => metrics.listenerErrorsTotal.inc({ service }),
  });
  log.info({ ipFamily: family, listen: host, proxyPortRange: config.portRange || 'random', udpTimeoutMs: config.udpIdleTimeoutMs }, 'userspace proxy mode');

  return {
    backend,
    families: [family],
    afterFullSync() {},
    monitor() {
      return every(deps.clock, AFFINITY_SWEEP_MS, () => balancer.sweep());
    },
  };
}

/** Turns the proxy events of one service port's listener into userspace metrics. */
export function proxyEventMetrics(m: UserspaceMetrics, service: string): (e: ProxyEvent) => void {
  return (e) => {
    switch (e.type) {
      case 'accepted':
        m.total.inc({ service, protocol: 'TCP' });
        m.active.inc({ service, protocol: 'TCP' });
        break;
      case 'dial-failed':
        m.dialFailures.inc({ service });
        break;
      case 'closed':
        m.active.dec({ service, protocol: 'TCP' });
        m.bytes.inc({ service, protocol: 'TCP', direction: 'to_endpoint' }, e.bytesToEndpoint);
        m.bytes.inc({ service, protocol: 'TCP', direction: 'to_client' }, e.bytesToClient);
        if (e.reason === 'no endpoint' || e.reason === 'dial failed') m.rejected.inc({ service, protocol: 'TCP', reason: e.reason });
        break;
      case 'udp-session-start':
        m.total.inc({ service, protocol: 'UDP' });
        m.active.inc({ service, protocol: 'UDP' });
        break;
      case 'udp-session-end':
        m.active.dec({ service, protocol: 'UDP' });
        m.bytes.inc({ service, protocol: 'UDP', direction: 'to_endpoint' }, e.bytesToEndpoint);
        m.bytes.inc({ service, protocol: 'UDP', direction: 'to_client' }, e.bytesToClient);
        break;
      case 'udp-dropped':
        m.rejected.inc({ service, protocol: 'UDP', reason: e.reason });
        break;
      default:
        break;
    }
  };
}
