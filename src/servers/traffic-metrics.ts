/**
 * --traffic-counters: kubeproxy_ts_endpoint_packets_total and
 * kubeproxy_ts_endpoint_bytes_total{service,endpoint}, the totals the mode
 * keeps (proxier/traffic-totals.ts), read at each scrape: a scrape reads no
 * kernel counter, it shows the mode's last reading (iptables: full syncs and
 * every --traffic-counters-period; nftables: every period and for each
 * /debug/traffic request). At most --traffic-counters-max-endpoints
 * (service, endpoint) pairs, two series each; an endpoint gone from the rules
 * loses its series.
 */
import { Counter, type Registry } from 'prom-client';
import type { EndpointTraffic } from '../../proxier/traffic-totals.ts';

export function registerTrafficMetrics(registry: Registry, traffic: () => readonly EndpointTraffic[] | null): void {
  const labelNames = ['service', 'endpoint'] as const;
  const counter = (name: string, help: string, value: (t: EndpointTraffic) => number): void => {
    new Counter({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        for (const t of traffic() ?? []) this.inc({ service: t.service, endpoint: t.endpoint }, value(t));
      },
    });
  };
  counter(
    'kubeproxy_ts_endpoint_packets_total',
    "Packets DNATed to the endpoint by its KUBE-SEP rule (iptables) or its endpoint chain's rule (nftables): new connections (TCP) or flows (UDP), since the agent started (kube-proxy-ts)",
    (t) => t.packets,
  );
  counter(
    'kubeproxy_ts_endpoint_bytes_total',
    "Bytes of the packets DNATed to the endpoint by its KUBE-SEP rule (iptables) or its endpoint chain's rule (nftables) (the first packet of each connection), since the agent started (kube-proxy-ts)",
    (t) => t.bytes,
  );
}
