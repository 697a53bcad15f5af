/**
 * Metrics of the userspace proxy, next to upstream's kubeproxy_* ones (which
 * upstream's userspace mode never had): per service port, the connections
 * (TCP) and sessions (UDP) open now and in total, the bytes carried in each
 * direction, dial failures and dropped datagrams, and the listeners.
 *
 * The "service" label is the service port ("namespace/name:port"); the
 * "protocol" label is TCP or UDP. Bytes are counted when a connection or
 * session ends (per-chunk counting would cost throughput).
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { SyncReport } from '../../proxier/mode.ts';
import type { UserspaceEvent } from '../../userspace/proxy-opener.ts';

export type UserspaceMetrics = ReturnType<typeof createUserspaceMetrics>;

export function createUserspaceMetrics(registry: Registry) {
  const registers = [registry];
  const labelNames = ['service', 'protocol'] as const;
  return {
    active: new Gauge({
      name: 'kubeproxy_ts_userspace_connections_active',
      help: 'TCP connections and UDP sessions open through the userspace proxy',
      labelNames,
      registers,
    }),
    total: new Counter({
      name: 'kubeproxy_ts_userspace_connections_total',
      help: 'TCP connections and UDP sessions accepted by the userspace proxy',
      labelNames,
      registers,
    }),
    bytes: new Counter({
      name: 'kubeproxy_ts_userspace_bytes_total',
      help: 'Bytes carried by the userspace proxy, counted when a connection or session ends',
      labelNames: [...labelNames, 'direction'],
      registers,
    }),
    dialFailures: new Counter({
      name: 'kubeproxy_ts_userspace_dial_failures_total',
      help: 'Failed attempts to connect to an endpoint (each retry counts)',
      labelNames: ['service'],
      registers,
    }),
    rejected: new Counter({
      name: 'kubeproxy_ts_userspace_rejected_total',
      help: 'Connections closed and datagrams dropped without reaching an endpoint',
      labelNames: [...labelNames, 'reason'],
      registers,
    }),
    listeners: new Gauge({ name: 'kubeproxy_ts_userspace_listeners', help: 'Proxy listeners open (one per service port and role)', registers }),
    listenerErrorsTotal: new Counter({
      name: 'kubeproxy_ts_userspace_listener_errors_total',
      help: 'Listeners that could not be opened (port range exhausted, address in use)',
      labelNames: ['service'],
      registers,
    }),
  };
}

/** Turns the events of the userspace proxy's listeners into its metrics. */
export function userspaceEventMetrics(m: UserspaceMetrics): (service: string, e: UserspaceEvent) => void {
  return (service, e) => {
    switch (e.type) {
      case 'listener-opened':
        m.listeners.inc();
        break;
      case 'listener-closed':
        m.listeners.dec();
        break;
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

/** Listeners a sync could not open (port range exhausted, address in use), per service port. */
export function observeUserspaceSync(m: UserspaceMetrics, r: SyncReport): void {
  for (const f of r.failures) if (f.stage === 'listener' && f.service !== undefined) m.listenerErrorsTotal.inc({ service: f.service });
}
