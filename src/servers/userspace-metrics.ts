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

export type UserspaceMetrics = ReturnType<typeof createUserspaceMetrics>;

export function createUserspaceMetrics(registry: Registry) {
  const registers = [registry];
  const labelNames = ['service', 'protocol'] as const;
  return {
    active: new Gauge({ name: 'kubeproxy_ts_userspace_connections_active', help: 'TCP connections and UDP sessions open through the userspace proxy', labelNames, registers }),
    total: new Counter({ name: 'kubeproxy_ts_userspace_connections_total', help: 'TCP connections and UDP sessions accepted by the userspace proxy', labelNames, registers }),
    bytes: new Counter({ name: 'kubeproxy_ts_userspace_bytes_total', help: 'Bytes carried by the userspace proxy, counted when a connection or session ends', labelNames: [...labelNames, 'direction'], registers }),
    dialFailures: new Counter({ name: 'kubeproxy_ts_userspace_dial_failures_total', help: 'Failed attempts to connect to an endpoint (each retry counts)', labelNames: ['service'], registers }),
    rejected: new Counter({ name: 'kubeproxy_ts_userspace_rejected_total', help: 'Connections closed and datagrams dropped without reaching an endpoint', labelNames: [...labelNames, 'reason'], registers }),
    listeners: new Gauge({ name: 'kubeproxy_ts_userspace_listeners', help: 'Proxy listeners open (one per service port and role)', registers }),
    listenerErrorsTotal: new Counter({ name: 'kubeproxy_ts_userspace_listener_errors_total', help: 'Listeners that could not be opened (port range exhausted, address in use)', labelNames: ['service'], registers }),
  };
}
